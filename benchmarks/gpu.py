"""The multivariate measures on a GPU: torch CUDA against numpy, at the issue's size.

    .venv/bin/python benchmarks/gpu.py                       # MMD B=1000, energy_mv, c2st at 10k x 10k x 64
    .venv/bin/python benchmarks/gpu.py --rows 300 --features 8 --permutations 20 --device cpu   # a CPU smoke run

For each measure (``mmd`` with ``--permutations`` permutations, ``energy_mv`` with the same
number, ``c2st``) it scores one seeded window (``--rows`` x ``--features``, four features shifted by
0.06 sd) against a reference summary of ``--rows`` rows whose sample keeps every row, on the numpy
backend and on torch (``--device``, float64 and float32), and prints one JSON line per run: seconds
(best of ``--repeat`` after one warm-up; CUDA synchronised), the value and p-value, and the speed-up
over numpy. Without CUDA (or with ``--device cpu``) torch runs on the CPU, which is what ``backend:
auto`` never picks; the figures then say so. Add ``--skip-numpy`` where numpy at full size is too slow
to wait for (it is reported as skipped, not as a figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def data(rows: int, features: int, seed: int = 20240603) -> tuple[np.ndarray, np.ndarray]:
    """A reference and a window with a mild shift in four features."""
    rng = np.random.default_rng(seed)
    cov = 0.3 * np.ones((features, features)) + 0.7 * np.eye(features)
    reference = rng.multivariate_normal(np.zeros(features), cov, size=rows)
    window = rng.multivariate_normal(np.zeros(features), cov, size=rows)
    window[:, : min(4, features)] += 0.06
    return reference, window


def measures(permutations: int, rows: int) -> dict[str, Any]:
    """The measures timed, each keeping every window row."""
    from monitor.divergence.classifier import ClassifierTest
    from monitor.divergence.kernels import MMD, EnergyDistance

    return {"mmd": MMD(permutations=permutations, max_window=rows),
            "energy_mv": EnergyDistance(permutations=permutations, max_window=rows),
            "c2st": ClassifierTest()}


def timed(function: Callable[[], Any], repeat: int, synchronise: Callable[[], None]) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs after one warm-up."""
    result = function()
    synchronise()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        synchronise()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    """Time each measure on numpy and torch; one JSON line per run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--permutations", type=int, default=1_000)
    parser.add_argument("--device", default="cuda", help="torch device (cuda, cuda:1, cpu)")
    parser.add_argument("--measures", default="mmd,energy_mv,c2st")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-numpy", action="store_true")
    args = parser.parse_args()

    import torch

    from monitor.divergence.backend import resolve_backend
    from monitor.divergence.summary import summarize_multivariate

    device = args.device if args.device == "cpu" or torch.cuda.is_available() else "cpu"
    synchronise = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    reference, window = data(args.rows, args.features)
    summary = summarize_multivariate(reference, [f"x{i}" for i in range(args.features)], max_sample=args.rows)
    chosen = measures(args.permutations, args.rows)
    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else "none (torch on the CPU)"
    for name in args.measures.split(","):
        measure = chosen[name]
        numpy_seconds = None
        runs = [("numpy", resolve_backend("numpy"))] if not args.skip_numpy else []
        runs += [(f"torch {dtype}", resolve_backend("torch", device=device, dtype=dtype))
                 for dtype in ("float64", "float32")]
        for label, backend in runs:
            seconds, score = timed(lambda: measure.score(summary, window, backend), args.repeat, synchronise)
            if label == "numpy":
                numpy_seconds = seconds
            print(json.dumps({
                "measure": name, "backend": label, "device": backend.device, "gpu": gpu,
                "rows": args.rows, "features": args.features,
                "permutations": args.permutations if name != "c2st" else None,
                "seconds": round(seconds, 4), "value": float(score.value),
                "p_value": None if score.p_value is None else float(score.p_value),
                "speedup_vs_numpy": None if numpy_seconds is None else round(numpy_seconds / seconds, 2),
                "torch": torch.__version__, "numpy_skipped": args.skip_numpy,
            }), flush=True)


if __name__ == "__main__":
    main()

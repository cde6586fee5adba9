"""alibi-detect: ``KSDrift`` / ``ChiSquareDrift`` on case 1, ``MMDDrift`` (PyTorch, CPU) on cases 2-3.

Case 1: ``KSDrift`` (scipy's ``ks_2samp`` per feature) on the 50 numeric columns; ``ChiSquareDrift``
on the 10 categorical columns, integer-coded beforehand (alibi-detect takes numbers only; the
coding is untimed). Case 2/3: ``MMDDrift(backend="pytorch", n_permutations=100)`` on data
standardised by the reference (untimed) with the kernel bandwidth set to driftd's, so both
test the same hypothesis with the same kernel (``mmd``); ``mmd_default`` lets alibi-detect infer
its own bandwidth from the raw data, as a user would. The detector constructor is untimed
set-up; ``predict`` is timed. alibi-detect is BSL 1.1 licensed: benchmark use only.
Run in the peers venv.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import (  # noqa: E402
    Record,
    measure,
    record_from,
    runner_arguments,
    standardized_like_driftd,
    timed,
)
from benchmarks.data import load_case  # noqa: E402

PERMUTATIONS = 100


def _version() -> str:
    from importlib.metadata import version

    return f"alibi-detect {version('alibi-detect')}"


def run_case1(measure_name: str, repeat: int, warmup: int) -> Record:
    """KSDrift or ChiSquareDrift on case 1."""
    from alibi_detect.cd import ChiSquareDrift, KSDrift

    case = load_case(1)
    if measure_name == "ks":
        reference, window = case.numeric_array(case.reference), case.numeric_array(case.window)
        setup_seconds, detector = timed(lambda: KSDrift(reference, p_val=0.05, correction="bonferroni"))
    else:
        reference, window = _integer_codes(case)
        categories = {i: int(max(reference[:, i].max(), window[:, i].max())) + 1
                      for i in range(reference.shape[1])}
        setup_seconds, detector = timed(lambda: ChiSquareDrift(reference, p_val=0.05,
                                                               categories_per_feature=categories))
    timing = measure(lambda: detector.predict(window), repeat, warmup)
    data = timing.result["data"]
    notes = f"{reference.shape[1]} features; drift flagged: {data['is_drift']}; constructor untimed"
    return record_from("alibi_detect", 1, measure_name, timing, version=_version(),
                       setup_seconds=round(setup_seconds, 4), notes=notes)


def _integer_codes(case) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """Categorical columns of case 1 as integer codes over the union of categories."""
    ref_cols, win_cols = [], []
    for name in case.categorical:
        ref = np.asarray(case.reference.column(name).to_pylist(), dtype=object)
        win = np.asarray(case.window.column(name).to_pylist(), dtype=object)
        cats = np.union1d(np.unique(ref), np.unique(win))
        ref_cols.append(np.searchsorted(cats, ref))
        win_cols.append(np.searchsorted(cats, win))
    return np.column_stack(ref_cols).astype(np.int64), np.column_stack(win_cols).astype(np.int64)


def run_mmd(case_number: int, measure_name: str, repeat: int, warmup: int) -> Record:
    """MMDDrift with the PyTorch backend on the CPU."""
    import torch
    from alibi_detect.cd import MMDDrift
    from alibi_detect.utils.pytorch.kernels import GaussianRBF

    case = load_case(case_number)
    raw_ref, raw_win = case.numeric_array(case.reference), case.numeric_array(case.window)
    if measure_name == "mmd":
        reference, window, sigma = standardized_like_driftd(raw_ref, raw_win)
        reference, window = reference.astype(np.float32), window.astype(np.float32)
        kernel = GaussianRBF(sigma=torch.tensor([sigma]))
        build = lambda: MMDDrift(reference, backend="pytorch", n_permutations=PERMUTATIONS, p_val=0.05,  # noqa: E731
                                 kernel=kernel, configure_kernel_from_x_ref=False, device="cpu")
        bandwidth = f"sigma {sigma:.4f} on reference-standardised data (driftd's)"
    else:
        reference, window = raw_ref.astype(np.float32), raw_win.astype(np.float32)
        build = lambda: MMDDrift(reference, backend="pytorch", n_permutations=PERMUTATIONS, p_val=0.05,  # noqa: E731
                                 device="cpu")
        bandwidth = "sigma inferred by alibi-detect from the raw reference"
    setup_seconds, detector = timed(build)
    timing = measure(lambda: detector.predict(window), repeat, warmup)
    data = timing.result["data"]
    notes = (f"{len(reference):,}+{len(window):,} rows x {reference.shape[1]}, {PERMUTATIONS} permutations, "
             f"float32, {bandwidth}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    return record_from("alibi_detect", case_number, measure_name, timing, version=_version(),
                       setup_seconds=round(setup_seconds, 4), p_value=float(data["p_val"]),
                       statistic=float(data["distance"]), notes=notes)


def main() -> None:
    """Run one alibi-detect measurement and print its JSON line."""
    args = runner_arguments(__doc__.splitlines()[0], ["ks", "chi_square", "mmd", "mmd_default"], [1, 2, 3])
    if args.case == 1:
        if args.measure not in ("ks", "chi_square"):
            raise SystemExit("case 1 takes ks or chi_square")
        record = run_case1(args.measure, args.repeat, args.warmup)
    else:
        if not args.measure.startswith("mmd"):
            raise SystemExit("cases 2 and 3 take mmd or mmd_default")
        record = run_mmd(args.case, args.measure, args.repeat, args.warmup)
    record.emit()


if __name__ == "__main__":
    main()

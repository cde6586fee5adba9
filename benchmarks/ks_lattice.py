"""KS p-values against scipy at EVERY attainable D of large (n, m) pairs (minutes; the unit test
``tests/unit/test_ks_lattice.py`` runs smaller pairs and strides of these).

    .venv/bin/python benchmarks/ks_lattice.py [n,m ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.divergence.ecdf import ks_asymptotic_p_value  # noqa: E402
from tests.unit.test_ks_lattice import attainable_in_band  # noqa: E402

PAIRS = [(100_000, 100_000), (100_000, 20_000), (30_000, 30_000), (12_000, 12_000)]


def check(n: int, m: int) -> tuple[int, int, float, float]:
    """(points, points beyond 1e-9 relative, worst relative difference, seconds)."""
    started = time.perf_counter()
    n_eff, d = attainable_in_band(n, m)
    ours = np.array([ks_asymptotic_p_value(float(x), n_eff) for x in d])
    theirs = stats.kstwo.sf(d, n_eff)
    relative = np.abs(ours - theirs) / np.maximum(theirs, 1e-300)
    relative[~np.isfinite(ours)] = np.inf
    return d.size, int((relative > 1e-9).sum()), float(relative.max()), time.perf_counter() - started


if __name__ == "__main__":
    pairs = [tuple(map(int, arg.split(","))) for arg in sys.argv[1:]] or PAIRS
    for n, m in pairs:
        points, bad, worst, seconds = check(n, m)
        print(f"n={n} m={m}: {points} attainable D in driftd's band, {bad} beyond 1e-9 relative of scipy "
              f"(worst {worst:.2e}), {seconds:.0f} s", flush=True)

"""KS p-values against scipy at every D two samples of sizes (n, m) can produce.

The two-sample KS statistic is a multiple of 1/lcm(n, m), so every attainable D is on that
lattice. Above 10,000 values a side driftd computes the statistic itself and takes the p-value
from ``ks_asymptotic_p_value(D, round(n m / (n + m)))``, which is ``scipy.stats.kstwo.sf`` (what
``ks_2samp(method="asymp")`` uses) except in the band where scipy's double-double Smirnov
sum is slow and driftd sums Birnbaum–Tingey in log space. That band is the one tested here, at
every lattice point: where ``n_eff (1 - D)`` is a whole number the old sum took the log of a tiny
negative rounding error and returned p = 1.0 (scipy: 1e-71). Outside it driftd calls scipy itself.
``benchmarks/ks_lattice.py`` runs the same check over every D of larger pairs (minutes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from monitor.divergence import BUILTIN_MEASURES, NumericWindow, summarize_numeric
from monitor.divergence.ecdf import ks_asymptotic_p_value


def effective_n(n: int, m: int) -> int:
    """scipy's ``round(n m / (n + m))`` for the asymptotic two-sided p-value."""
    big, small = sorted([float(n), float(m)], reverse=True)
    return int(np.round(big * small / (big + small)))


def attainable_in_band(n: int, m: int) -> tuple[int, np.ndarray]:
    """Every D = k / lcm(n, m) where driftd's own sum (not scipy's call) gives the p-value."""
    lattice = n * m // math.gcd(n, m)
    n_eff = effective_n(n, m)
    low, high = math.sqrt(2.2 / n_eff), min(0.5, math.sqrt(370.0 / n_eff))
    steps = np.arange(math.ceil(low * lattice), math.floor(high * lattice) + 1)
    d = steps / lattice
    return n_eff, d[(n_eff * d * d >= 2.2) & (n_eff * d * d < 370.0) & (d < 0.5) & (n_eff * d > 1.0)]


def assert_agrees(ours: np.ndarray, theirs: np.ndarray, d: np.ndarray) -> None:
    assert np.isfinite(ours).all() and ((ours >= 0) & (ours <= 1)).all()
    relative = np.abs(ours - theirs) / np.maximum(theirs, 1e-300)
    worst = int(np.argmax(relative))
    assert relative[worst] <= 1e-9, f"D={d[worst]!r}: driftd {ours[worst]!r}, scipy {theirs[worst]!r}"


# (n, m): both far from each other and equal; n = m puts half the lattice on whole n_eff (1 - D).
@pytest.mark.parametrize(("n", "m"), [(10_002, 10_002), (100_000, 200)])
def test_every_attainable_d_matches_scipy(n: int, m: int) -> None:
    n_eff, d = attainable_in_band(n, m)
    ours = np.array([ks_asymptotic_p_value(float(x), n_eff) for x in d])
    assert_agrees(ours, stats.kstwo.sf(d, n_eff), d)


@pytest.mark.parametrize(("n", "m"), [(30_000, 30_000), (100_000, 100_000)])
def test_large_windows_every_attainable_d_is_a_valid_decreasing_p_value(n: int, m: int) -> None:
    # scipy takes ~35 ms a point at n_eff = 50,000: it checks a stride of the lattice here (and
    # every point in benchmarks/ks_lattice.py); driftd's own value is checked at every point.
    n_eff, d = attainable_in_band(n, m)
    stride = 1 if n <= 30_000 else 3
    ours = np.array([ks_asymptotic_p_value(float(x), n_eff) for x in d[::stride]])
    assert np.isfinite(ours).all() and ((ours >= 0) & (ours <= 1)).all()
    assert (np.diff(ours) <= 0).all(), "p-value must not rise with D"
    sample = np.arange(0, ours.size, 97 if n <= 30_000 else 199)
    whole = (n_eff * (1 - d[::stride][sample])) % 1 == 0
    assert whole.any() and (~whole).any()
    assert_agrees(ours[sample], stats.kstwo.sf(d[::stride][sample], n_eff), d[::stride][sample])


def test_ks_on_100k_rows_where_n_eff_times_1_minus_d_is_whole_matches_ks_2samp() -> None:
    # Two shifted integer grids of 100,000 values: D = 7,000 / 100,000, n_eff (1 - D) = 46,500; the
    # old sum gave p = 1.0 here.
    n = 100_000
    reference = np.arange(n, dtype=np.float64)
    window = reference + 7_000
    score = BUILTIN_MEASURES["ks"].score(summarize_numeric(reference), NumericWindow(window))
    expected = stats.ks_2samp(reference, window, method="asymp")
    assert score.value == pytest.approx(expected.statistic, rel=1e-12)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert score.p_value < 1e-100

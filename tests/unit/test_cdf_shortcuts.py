"""KS without the full merge equals the merge's bit for bit; W1 from the quantile functions equals scipy's."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.divergence.window import CdfDistances, NumericWindow, ks_two_sorted, merged_gaps, w1_two_sorted


def _samples(rng: np.random.Generator, kind: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == 0:  # continuous, a small shift: the maximum sits anywhere
        return rng.normal(size=n), rng.normal(rng.normal() * 0.03, 1, size=m)
    if kind == 1:  # few distinct values: ties inside and across the samples
        return rng.integers(0, 50, n).astype(float), rng.integers(0, 50, m).astype(float)
    if kind == 2:  # the window a prefix of the reference's draws (heavy exact ties)
        x = rng.normal(size=n)
        return x, x[: max(1, m % n)].copy()
    if kind == 3:  # disjoint supports: KS 1
        return rng.exponential(size=n), rng.normal(50, 1, size=m)
    if kind == 4:  # rounded values
        return np.round(rng.normal(size=n), 2), np.round(rng.normal(0.01, 1, size=m), 2)
    if kind == 5:  # the window inside a corner of the reference (mass below and above it)
        return rng.normal(size=n), rng.normal(0.5, 0.05, size=m)
    x = rng.normal(size=n)  # identical samples: KS 0
    return x, x.copy()


@pytest.mark.parametrize("kind", range(7))
def test_ks_without_the_full_merge_equals_the_merge_bit_for_bit(kind: int) -> None:
    rng = np.random.default_rng(100 + kind)
    for _ in range(40):
        n, m = (int(v) for v in rng.integers(1, 25_000, size=2))
        x, y = (np.sort(v) for v in _samples(rng, kind, n, m))
        for a, b in ((x, y), (y, x)):
            assert ks_two_sorted(a, b) == CdfDistances.of(merged_gaps(a, b)).ks


@pytest.mark.parametrize("kind", range(7))
def test_w1_from_the_quantile_functions_equals_scipy(kind: int) -> None:
    rng = np.random.default_rng(200 + kind)
    for _ in range(15):
        n = int(rng.integers(1, 20_000))
        m = n if rng.random() < 0.3 else int(rng.integers(1, 20_000))
        x, y = (np.sort(v) for v in _samples(rng, kind, n, m))
        expected = stats.wasserstein_distance(x, y)
        assert w1_two_sorted(x, y) == pytest.approx(expected, rel=1e-10, abs=1e-300)
        assert w1_two_sorted(y, x) == pytest.approx(expected, rel=1e-10, abs=1e-300)


def test_a_window_keeps_its_ks_and_w1_per_reference_and_they_match_the_full_merge() -> None:
    rng = np.random.default_rng(3)
    reference = np.sort(rng.normal(size=30_000))
    window = NumericWindow(rng.normal(0.02, 1.1, size=20_000))
    ks, w1 = window.ks(reference), window.w1(reference)
    merged = window.distances(reference)
    assert ks == merged.ks and w1 == pytest.approx(merged.w1, rel=1e-10)
    other = np.sort(rng.normal(size=30_000))
    assert window.ks(other) == CdfDistances.of(merged_gaps(other, window.sorted)).ks


def test_w1_on_a_grid_too_large_to_keep_equals_scipy() -> None:
    rng = np.random.default_rng(4)
    x, y = np.sort(rng.normal(size=300_000)), np.sort(rng.normal(0.01, 1, size=150_001))
    assert w1_two_sorted(x, y) == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-10)


def test_features_go_to_the_pool_only_when_a_core_is_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from monitor.divergence import base

    monkeypatch.setattr(base.os, "cpu_count", lambda: 2)
    items = list(range(8))

    def threads(load: float) -> set[str]:
        monkeypatch.setattr(base.os, "getloadavg", lambda: (load, load, load))
        return set(base.map_features(lambda _: threading.current_thread().name, items, 10**6))

    assert threads(3.5) == {threading.current_thread().name}  # busy: one after the other, here
    assert all(name.startswith("driftd-measure") for name in threads(0.2))  # idle: on the pool
    assert base.map_features(lambda i: i * i, items, 10**6) == [i * i for i in items]  # in order


@pytest.mark.parametrize("m", [1, 2, 3, 33, 64, 65])
def test_ks_of_a_tiny_window_against_a_large_reference_equals_the_merge(m: int) -> None:
    rng = np.random.default_rng(m)
    x = np.sort(rng.normal(size=6_000))
    for y in (np.sort(rng.normal(size=m)), np.full(m, x[100]), np.sort(rng.choice(x, m))):
        assert ks_two_sorted(x, y) == CdfDistances.of(merged_gaps(x, y)).ks
        assert ks_two_sorted(y, x) == CdfDistances.of(merged_gaps(y, x)).ks

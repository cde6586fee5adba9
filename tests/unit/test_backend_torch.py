"""Backend resolution, and the torch implementations agree with numpy and scipy."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from monitor.divergence.backend import NUMPY, Backend, PairFunction, resolve_backend
from monitor.divergence.classifier import ClassifierTest
from monitor.divergence.kernels import permutation_indicators, permutation_test
from monitor.divergence.registry import MULTIVARIATE_MEASURES
from monitor.divergence.summary import summarize_multivariate
from tests.conftest import require_module

torch = require_module("torch")
torch_ops = require_module("monitor.divergence.torch_ops")

TORCH = Backend("torch")
TORCH32 = Backend("torch", dtype="float32")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240602)


@pytest.mark.skipif(torch.cuda.is_available(), reason="auto picks torch on a GPU")
def test_auto_picks_numpy_without_a_gpu() -> None:
    assert resolve_backend("auto") == Backend("numpy", "cpu", "float64")
    assert resolve_backend("auto", dtype="float32") == Backend("numpy", "cpu", "float32")


def test_auto_never_picks_torch_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a machine with a GPU
    assert resolve_backend("auto") == Backend("torch", "cuda", "float64")
    assert resolve_backend("auto", device="cuda:1") == Backend("torch", "cuda:1", "float64")
    assert resolve_backend("auto", device="cpu") == Backend("numpy", "cpu", "float64")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_backend("auto", device="cpu") == resolve_backend("auto") == Backend("numpy", "cpu", "float64")


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch defaults to the GPU there")
def test_torch_without_a_gpu_runs_on_the_cpu() -> None:
    assert resolve_backend("torch") == Backend("torch", "cpu", "float64")
    assert resolve_backend("torch", dtype="float32") == TORCH32
    with pytest.raises(ValueError, match="CUDA"):
        resolve_backend("torch", device="cuda")


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="dtype"):
        resolve_backend("numpy", dtype="float16")
    with pytest.raises(ValueError, match="CPU only"):
        resolve_backend("numpy", device="cuda")
    with pytest.raises(ValueError, match="backend must be"):
        resolve_backend("jax")  # type: ignore[arg-type]


def test_torch_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"driftd\[torch\]"):
        resolve_backend("torch")
    assert resolve_backend("auto") == Backend("numpy")


def test_numpy_measures_do_not_import_torch() -> None:
    code = (
        "import sys, numpy as np\n"
        "from monitor.divergence.backend import resolve_backend\n"
        "from monitor.divergence.registry import MULTIVARIATE_MEASURES as MEASURES\n"
        "from monitor.divergence.summary import summarize_multivariate\n"
        "s = summarize_multivariate(np.random.default_rng(0).normal(size=(40, 2)), ['a', 'b'])\n"
        "for m in MEASURES.values():\n"
        "    m.score(s, np.ones((20, 2)) + np.arange(20)[:, None])\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("pair", ["gaussian", "distance"])
def test_torch_permutation_tests_match_numpy_with_the_same_splits(
    pair: PairFunction, rng: np.random.Generator
) -> None:
    x, y = rng.normal(size=(120, 5)), rng.normal(0.1, 1.0, size=(90, 5))
    indicators = permutation_indicators(120, 90, 200, rng)
    numpy_test = permutation_test(pair, x, y, indicators, NUMPY, 2.0, 64)
    for block_rows in (64, 500):
        torch_test = permutation_test(pair, x, y, indicators, TORCH, 2.0, block_rows)
        np.testing.assert_allclose(torch_test.statistics, numpy_test.statistics, rtol=0, atol=1e-9)
        assert torch_test.p_value == numpy_test.p_value
    for single_precision in (TORCH32, Backend("numpy", dtype="float32")):
        single = permutation_test(pair, x, y, indicators, single_precision, 2.0, 64)
        np.testing.assert_allclose(single.statistics, numpy_test.statistics, rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["mmd", "energy_mv"])
def test_measures_score_the_same_on_both_backends(name: str, rng: np.random.Generator) -> None:
    summary = summarize_multivariate(rng.normal(size=(300, 4)), list("abcd"))
    measure = MULTIVARIATE_MEASURES[name]
    for window in (rng.normal(size=(250, 4)), rng.normal(0.3, 1.0, size=(250, 4))):
        on_numpy, on_torch = measure.score(summary, window), measure.score(summary, window, TORCH)
        assert on_torch.value == pytest.approx(on_numpy.value, rel=1e-9, abs=1e-12)
        assert on_torch.p_value == on_numpy.p_value


def test_torch_c2st_separates_shift_from_no_shift(rng: np.random.Generator) -> None:
    summary = summarize_multivariate(rng.normal(size=(300, 3)), list("abc"))
    measure = ClassifierTest(epochs=5)
    window = rng.normal(size=(300, 3))
    null = measure.score(summary, window, TORCH32)
    assert abs(null.value - 0.5) < 0.08
    shifted = measure.score(summary, window + [2.0, 0.0, 0.0], TORCH32)
    assert shifted.value > 0.8
    assert shifted.p_value is not None and shifted.p_value < 1e-10


def _samples(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    references = [
        rng.normal(size=500),
        rng.integers(0, 5, size=300).astype(float),
        rng.exponential(size=1_000),
        np.array([3.0]),
        rng.normal(size=50),
    ]
    windows = [
        rng.normal(0.2, 1.0, size=700),
        rng.integers(1, 6, size=40).astype(float),
        rng.exponential(2.0, size=20),
        np.array([1.0, 3.0, 3.0]),
        rng.normal(size=5_000),
    ]
    return [np.sort(r) for r in references], windows


def test_batched_ks_and_wasserstein_agree_with_scipy(rng: np.random.Generator) -> None:
    references, windows = _samples(rng)
    results = torch_ops.ks_wasserstein_batched(references, windows, TORCH)
    for (ks, w1), reference, window in zip(results, references, windows, strict=True):
        assert ks == pytest.approx(stats.ks_2samp(reference, window).statistic, rel=0, abs=1e-12)
        assert w1 == pytest.approx(stats.wasserstein_distance(reference, window), rel=1e-9)


def test_batches_of_any_size_give_the_same_results(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    references, windows = _samples(rng)
    whole = torch_ops.ks_wasserstein_batched(references, windows, TORCH)
    monkeypatch.setattr(torch_ops, "BATCH_VALUES", 1_000)
    np.testing.assert_allclose(
        torch_ops.ks_wasserstein_batched(references, windows, TORCH), whole, rtol=1e-12
    )
    single = torch_ops.ks_wasserstein_batched(references, windows, TORCH32)
    np.testing.assert_allclose(single, whole, rtol=1e-5, atol=1e-6)


def test_batched_statistics_refuse_empty_samples() -> None:
    with pytest.raises(ValueError, match="empty"):
        torch_ops.ks_wasserstein_batched([np.array([1.0])], [np.array([])], TORCH)

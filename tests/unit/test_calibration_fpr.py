"""Each test's false-positive rate at alpha 0.05 under no drift."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.divergence import (
    BUILTIN_MEASURES,
    CategoricalWindow,
    NumericWindow,
    summarize_categorical,
    summarize_numeric,
)

ALPHA = 0.05
REPETITIONS = 1_000
N_REFERENCE, N_WINDOW = 500, 200
CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
CATEGORY_P = [0.4, 0.25, 0.15, 0.12, 0.08]


@pytest.mark.parametrize("name", ["ks", "anderson_darling", "cramer_von_mises", "welch_t"])
def test_numeric_test_false_positive_rate(name: str) -> None:
    # A fresh reference each time: a two-sample test holds its size over both samples' draws.
    # anderson_darling's p-values are capped to 0.001..0.25, which leaves alpha 0.05 untouched.
    measure = BUILTIN_MEASURES[name]
    generator = np.random.default_rng(2024)
    rejections = 0
    for _ in range(REPETITIONS):
        reference = summarize_numeric(generator.gamma(2.0, size=N_REFERENCE))
        score = measure.score(reference, NumericWindow(generator.gamma(2.0, size=N_WINDOW)))
        rejections += measure.drifted(score, ALPHA)
    assert 0.03 <= rejections / REPETITIONS <= 0.07


def test_chi_square_false_positive_rate() -> None:
    measure = BUILTIN_MEASURES["chi_square"]
    generator = np.random.default_rng(2024)
    rejections = 0
    for _ in range(REPETITIONS):
        reference = summarize_categorical(generator.choice(CATEGORIES, N_REFERENCE, p=CATEGORY_P))
        window = CategoricalWindow.from_values(generator.choice(CATEGORIES, N_WINDOW, p=CATEGORY_P))
        rejections += measure.drifted(measure.score(reference, window), ALPHA)
    assert 0.03 <= rejections / REPETITIONS <= 0.07


def test_c2st_false_positive_rate() -> None:
    # A fresh reference and window each run, small so 1,000 classifier fits stay fast; BLAS on one
    # thread: L-BFGS-B's tiny matrix products are far slower spread over busy cores.
    from threadpoolctl import threadpool_limits

    from monitor.divergence import MULTIVARIATE_MEASURES, summarize_multivariate

    measure = MULTIVARIATE_MEASURES["c2st"]
    generator = np.random.default_rng(2024)
    rejections = 0
    with threadpool_limits(limits=1):
        for run in range(REPETITIONS):
            reference = summarize_multivariate(generator.normal(size=(80, 2)), ["x", "y"], seed=run)
            score = measure.score(reference, generator.normal(size=(80, 2)))
            rejections += measure.drifted(score, ALPHA)
    assert 0.03 <= rejections / REPETITIONS <= 0.07

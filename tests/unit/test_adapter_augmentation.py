"""The augmentation adapter, judged by the gate: promoted where the target is the source moved, rejected elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from monitor.adaptation import SklearnModel, adapt
from monitor.adaptation.model import SklearnRegressor
from monitor.adaptation.tasks import make_regression_task, make_task
from plugins.adapters.augmentation import Augmentation
from plugins.adapters.feature_alignment import FeatureAlignment

ROWS = 2000


def _decide(kind: str, seed: int, adapters: list) -> tuple:  # type: ignore[type-arg]
    task = make_task(kind, 2, n_source=ROWS, n_target=ROWS, seed=seed)  # type: ignore[arg-type]
    champion = SklearnModel(LogisticRegression(max_iter=1000).fit(task.source.features, task.source.labels))
    decision = adapt(champion, task.source, task.target, adapters, seed=seed)

    def accuracy(model) -> float:  # type: ignore[no-untyped-def]
        return float(np.mean(model.predict(task.target.features) == task.target_labels))

    return decision, accuracy(champion), accuracy


@pytest.mark.parametrize("seed", range(3))
def test_promoted_where_the_target_is_the_source_moved(seed: int) -> None:
    decision, before, accuracy = _decide("affine", seed, [Augmentation({})])
    assert decision.winner == "augmentation", decision.reason
    assert accuracy(decision.model) > before + 0.15
    scores = decision.challenger("augmentation").scores
    assert scores["hypothesis"] == "map" and scores["gain"] > 0.15
    assert decision.challenger("augmentation").result.details["amount"] in (0.25, 0.5, 1.0)


@pytest.mark.parametrize("kind", ["covariate", "label", "subspace_flip", "none", "swap"])
def test_rejected_where_it_does_not_help(kind: str) -> None:
    for seed in range(3):
        decision, before, accuracy = _decide(kind, seed, [Augmentation({})])
        assert decision.winner is None, (seed, decision.reason)
        assert not decision.challenger("augmentation").passed


def test_the_map_it_bets_on_beats_it_where_both_apply() -> None:
    """Both bet on the same map; retraining on moved copies loses to mapping live rows back (the highest estimate
    wins), and the gate picks the truly better one."""
    decision, _, accuracy = _decide("affine", 0, [Augmentation({}), FeatureAlignment({})])
    assert decision.winner == "feature_alignment"
    assert accuracy(decision.model) >= accuracy(decision.challenger("augmentation").model)


def test_noise_augmentation_and_regressors() -> None:
    task = make_regression_task("affine", n_source=ROWS, n_target=ROWS, seed=0)
    champion = SklearnRegressor(LinearRegression().fit(task.source.features, task.source.labels))
    decision = adapt(champion, task.source, task.target, [Augmentation({}), ("noisy", Augmentation({"method": "noise"}))])
    mse = {c.name: float(np.mean((c.model.predict(task.target.features) - task.target_labels) ** 2))
           for c in decision.challengers}
    before = float(np.mean((champion.predict(task.target.features) - task.target_labels) ** 2))
    assert decision.winner == "augmentation" and mse["augmentation"] < before
    assert mse["noisy"] < before or not decision.challenger("noisy").passed  # whatever passes is truly better
    assert mse["augmentation"] <= mse["noisy"]  # moment matching moves the rows where the target lies

"""The ensemble adapter, judged by the gate: promoted where its members' average helps, rejected elsewhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from monitor.adaptation import Domain, SklearnModel, adapt
from monitor.adaptation.model import EnsembleModel, load_sklearn
from monitor.adaptation.tasks import make_task
from monitor.daemon.model_versions import ModelStore
from plugins.adapters.ensemble import Ensemble

ROWS = 2000


def _decide(kind: str, seed: int, labelled_rows: int = 0) -> tuple:  # type: ignore[type-arg]
    task = make_task(kind, 3, n_source=ROWS, n_target=ROWS, seed=seed)  # type: ignore[arg-type]
    champion = SklearnModel(LogisticRegression(max_iter=1000).fit(task.source.features, task.source.labels))
    target = task.target
    if labelled_rows:
        target = Domain(target.features, target.feature_names, task.target_labels,
                        np.arange(target.rows) < labelled_rows)
    decision = adapt(champion, task.source, target, [Ensemble({})], seed=seed)

    def accuracy(model) -> float:  # type: ignore[no-untyped-def]
        return float(np.mean(model.predict(task.target.features) == task.target_labels))

    return decision, accuracy(champion), accuracy


@pytest.mark.parametrize("seed", range(3))
def test_the_averaged_ensemble_is_promoted_under_label_shift(seed: int) -> None:
    decision, before, accuracy = _decide("label", seed)
    assert decision.winner == "ensemble", decision.reason
    details = decision.challenger("ensemble").result.details
    assert details["combine"] == "averaged" and details["members"] == ["current", "importance_weighting",
                                                                      "label_shift"]
    assert accuracy(decision.model) > before + 0.02


@pytest.mark.parametrize("kind", ["covariate", "none", "subspace_flip", "affine"])
def test_rejected_where_it_does_not_help(kind: str) -> None:
    for seed in range(3):
        decision, _, _ = _decide(kind, seed)
        assert decision.winner is None, (seed, decision.reason)


def test_with_target_labels_the_weights_are_stacked_on_them() -> None:
    decision, before, accuracy = _decide("label", 2, labelled_rows=100)
    details = decision.challenger("ensemble").result.details
    assert details["combine"] == "stacked" and details["weights"][2] > details["weights"][0], details
    assert decision.winner == "ensemble" and accuracy(decision.model) > before + 0.05


def test_an_ensemble_version_is_saved_and_loaded_back(tmp_path: Path) -> None:
    decision, _, _ = _decide("label", 0)
    model = decision.model
    assert isinstance(model, EnsembleModel)
    entry = model.save(tmp_path)
    (tmp_path / "manifest.json").write_text(__import__("json").dumps(entry))
    loaded = ModelStore(None, {"sklearn": load_sklearn}).load(str(tmp_path), None)  # type: ignore[arg-type]
    assert isinstance(loaded, EnsembleModel) and np.allclose(loaded.weights, model.weights)
    rows = decision.split.target.features[:300]
    assert np.allclose(loaded.predict_proba(rows), model.predict_proba(rows))
    entry["members"][0]["folder"] = "../elsewhere"
    (tmp_path / "manifest.json").write_text(__import__("json").dumps(entry))
    with pytest.raises(Exception, match="member-<n>"):
        ModelStore(None, {"sklearn": load_sklearn}).load(str(tmp_path), None)  # type: ignore[arg-type]

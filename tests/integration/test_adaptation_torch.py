"""A torch champion through the daemon: every model adapter runs on it (importance weighting retrains it from its
factory with the weights), the gate judges, the winner is saved and loaded back as a torch model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.adaptation import ModelLoadError, TorchModel
from monitor.adaptation.model import AdaptedModel, load_torch
from monitor.daemon.adapting import AdaptationService
from monitor.store.adaptations import AdaptationRecords
from tests.adapt_support import MLP_FACTORY, train_mlp
from tests.adaptation_scenario import build_scenario
from tests.conftest import require_module
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.plugins import PluginManager
from tests.integration.test_adaptation import _drift, _runs

torch = require_module("torch")


def test_refit_retrains_from_the_factory_with_the_sample_weights() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(600, 4))
    labels = (features[:, 0] > 0).astype(np.int64)
    champion = train_mlp(features, labels, epochs=5)
    before = {name: value.clone() for name, value in champion.module.state_dict().items()}
    plain = champion.refit(features, labels)
    again = champion.refit(features, labels, sample_weight=np.ones(len(labels)))
    assert isinstance(plain, TorchModel) and plain.module is not champion.module
    assert np.allclose(plain.predict_proba(features), again.predict_proba(features), atol=1e-5)  # seeded
    assert all(torch.equal(before[name], value) for name, value in champion.module.state_dict().items())
    assert np.mean(plain.predict(features) == labels) > 0.95
    # weight 0 on every class-1 row: the refitted model has only seen class 0
    skewed = champion.refit(features, labels, sample_weight=(labels == 0).astype(float))
    assert np.mean(skewed.predict(features) == 0) > 0.95
    with pytest.raises(ModelLoadError, match="not among the model's classes"):
        champion.refit(features, labels + 5)


def test_refit_options_travel_through_save_and_load(tmp_path: Path) -> None:
    features = np.random.default_rng(1).normal(size=(200, 4))
    labels = (features[:, 1] > 0).astype(np.int64)
    champion = train_mlp(features, labels, epochs=2)
    champion.refit_options = {"epochs": 3, "seed": 4}
    entry = champion.refit(features, labels).save(tmp_path)
    assert entry["options"]["refit"] == {"epochs": 3, "seed": 4}
    loaded = load_torch(tmp_path / entry["file"], entry["options"])
    assert isinstance(loaded, TorchModel) and loaded.refit_options == {"epochs": 3, "seed": 4}


def test_a_torch_champion_adapts_end_to_end_through_the_daemon(tmp_path: Path) -> None:
    scenario = build_scenario(tmp_path / "data", "affine")
    training = scenario.task.source.take(np.arange(2000))
    champion = train_mlp(training.features, training.labels, epochs=20)
    model_path = scenario.directory / "model.pt"
    with open(model_path, "wb") as handle:
        torch.save(champion.module.state_dict(), handle)
    options = {"factory": MLP_FACTORY, "classes": [0, 1], "factory_options": champion.factory_options,
               "refit": {"epochs": 10}}
    adapters = ["importance_weighting", "feature_alignment", "label_shift", "finetune"]
    monitor = scenario.monitor(adapters)
    monitor["model"].update({"path": str(model_path), "loader": "torch", "options": options})
    raw = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
           "monitors": [monitor]}
    daemon = Daemon(build_config(raw, "test", environ={}), PluginManager(environ={}, load_entry_points=False))
    daemon.prepare()
    try:
        _drift(daemon, scenario, labels=300)
        daemon.adaptation.run_pending("adapt")
    finally:
        daemon.stop()
    runs = _runs(daemon)
    assert runs["importance_weighting"].state in {"rejected", "succeeded"}, runs["importance_weighting"].reason
    assert runs["label_shift"].state in {"rejected", "succeeded"}, runs["label_shift"].reason
    assert runs["finetune"].state in {"rejected", "succeeded", "promoted"}, runs["finetune"].reason
    promoted = [name for name, run in runs.items() if run.state == "promoted"]
    assert promoted == ["feature_alignment"], {name: run.reason for name, run in runs.items()}
    versions = AdaptationRecords(daemon.store).model_versions("adapt")
    service = AdaptationService(daemon.store, daemon.plugins, daemon.metrics, "check")
    loaded = service.models.load(versions[-1].path, daemon.config.monitors[0].model)
    assert isinstance(loaded, AdaptedModel) and isinstance(loaded.base, TorchModel)
    rows, truth = scenario.task.target.features[:1500], scenario.task.target_labels[:1500]
    assert np.mean(loaded.predict(rows) == truth) > np.mean(champion.predict(rows) == truth) + 0.1

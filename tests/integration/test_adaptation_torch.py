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


def test_a_torch_regressor_is_fine_tuned_and_promoted_through_the_daemon(tmp_path: Path) -> None:
    """A torch regression champion (loader option ``task: regression``): drift queues the runs, finetune trains on
    the live values that arrived (MSE), the gate judges it on held-out ones, and the promoted version loads back as
    a torch regressor with a lower target MSE; label_shift fails with its reason."""
    import pyarrow as pa

    from monitor.adaptation.tasks import make_regression_task
    from tests.adapt_support import REGRESSOR_FACTORY, train_regressor
    from tests.adaptation_scenario import Scenario
    from tests.helpers import write_csv

    task = make_regression_task("affine", n_source=4000, n_target=3000, seed=1)
    names = list(task.source.feature_names)
    training = task.source.take(np.arange(2000))
    champion = train_regressor(training.features, training.labels)
    directory = tmp_path / "data"
    directory.mkdir()
    model_path = directory / "model.pt"
    with open(model_path, "wb") as handle:
        torch.save(champion.module.state_dict(), handle)

    def table(features: np.ndarray, values: list[float | None]) -> pa.Table:
        columns = {name: features[:, i] for i, name in enumerate(names)}
        return pa.table({**columns, "label": pa.array(values, pa.float64())})

    training_path = write_csv(directory / "training.csv", table(training.features, training.labels.tolist()))
    live = directory / "live"
    live.mkdir()
    scenario = Scenario(directory, task, names, model_path, training_path, live)
    monitor = scenario.monitor(["finetune", "label_shift"])
    monitor["model"].update({"path": str(model_path), "loader": "torch",
                             "options": {"factory": REGRESSOR_FACTORY, "task": "regression",
                                         "factory_options": champion.factory_options}})
    raw = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
           "monitors": [monitor]}
    daemon = Daemon(build_config(raw, "test", environ={}), PluginManager(environ={}, load_entry_points=False))
    daemon.prepare()
    try:
        write_csv(live / "a.csv", table(task.source.features[2000:2500], task.source.labels[2000:2500].tolist()))
        assert daemon.tick_all()["adapt"].state == "ok"
        values = [float(v) if i < 300 else None for i, v in enumerate(task.target_labels[:1500])]
        write_csv(live / "b.csv", table(task.target.features[:1500], values))
        assert daemon.tick_all()["adapt"].state == "drift"
        daemon.adaptation.run_pending("adapt")
    finally:
        daemon.stop()
    runs = _runs(daemon)
    assert runs["finetune"].state == "promoted", runs["finetune"].reason
    scores = runs["finetune"].metrics["scores"]
    assert scores["loss"] == "squared_error" and scores["validator"] == "target_labels" and scores["gain"] > 0
    assert runs["finetune"].metrics["details"]["loss"] == "squared_error"
    assert runs["label_shift"].state == "failed"
    assert "a regression model has no classes" in str(runs["label_shift"].error or runs["label_shift"].reason)
    versions = AdaptationRecords(daemon.store).model_versions("adapt")
    service = AdaptationService(daemon.store, daemon.plugins, daemon.metrics, "check")
    loaded = service.models.load(versions[-1].path, daemon.config.monitors[0].model)
    assert isinstance(loaded, TorchModel) and loaded.is_regressor
    rows, truth = task.target.features[1500:], task.target_labels[1500:]  # rows no adapter and no gate saw
    assert np.mean((loaded.predict(rows) - truth) ** 2) < 0.5 * np.mean((champion.predict(rows) - truth) ** 2)

"""Models are loaded safely: pickles only from places only this user can write, torch weights only."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from monitor.adaptation.model import AdaptedModel, AffineMap, ModelLoadError, load_pickle, load_sklearn, load_torch
from monitor.store.adaptations import AdaptationRecords
from monitor.daemon.model_versions import ModelStore
from monitor.config import ModelConfig
from monitor.store.migrate import upgrade
from monitor.plugins import PluginManager
from monitor.store import Store

sklearn = pytest.importorskip("sklearn.linear_model")


def _model(directory: Path, mode: int = 0o600) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 3))
    estimator = sklearn.LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
    path = directory / "model.pkl"
    path.write_bytes(pickle.dumps(estimator))
    os.chmod(path, mode)
    return path


def test_a_private_pickle_loads(tmp_path: Path) -> None:
    model = load_sklearn(_model(tmp_path / "models"), {})
    assert list(model.classes) == [0, 1]
    assert model.predict_proba(np.zeros((2, 3))).shape == (2, 2)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_a_pickle_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = _model(tmp_path / "models", mode)
    with pytest.raises(ModelLoadError, match="refusing to unpickle.*writable by group or others"):
        load_pickle(path)


def test_a_pickle_in_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    path = _model(tmp_path / "shared")
    os.chmod(path.parent, 0o777)
    with pytest.raises(ModelLoadError, match="refusing to unpickle"):
        load_pickle(path)


def test_a_pickle_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = _model(tmp_path / "models")
    os.chown(path, 12345, 12345)
    with pytest.raises(ModelLoadError, match="owned by another user"):
        load_pickle(path)


def test_torch_weights_are_loaded_without_unpickling_code(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    with open(tmp_path / "evil.pt", "wb") as handle:
        torch.save({"weight": Evil()}, handle)
    with pytest.raises(ModelLoadError, match="cannot load the torch state dict"):
        load_torch(tmp_path / "evil.pt", {"factory": "tests.adapt_support:build_mlp",
                                          "factory_options": {"features": 3}, "classes": [0, 1]})
    assert not (tmp_path / "pwned").exists()


def test_a_promoted_version_round_trips_with_its_map_and_priors(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'driftd.db'}")
    upgrade(store.engine)
    run_id = _adaptation_run(store)
    loaders = PluginManager(environ={}, load_entry_points=False).provided["model_loaders"]
    models = ModelStore(AdaptationRecords(store), loaders)
    config = ModelConfig(path=str(_model(tmp_path / "configured")), store=str(tmp_path / "versions"))
    version, champion = models.champion("m", config)
    assert version.version == 1 and version.path == config.path
    challenger = AdaptedModel(champion, AffineMap(2 * np.eye(3), np.ones(3)), np.array([0.5, 2.0]))
    stored = models.promote("m", config, challenger, adaptation_id=run_id, note="test")
    assert stored.version == 2 and Path(stored.path).name == f"adaptation-{run_id}"
    assert oct(Path(stored.path).stat().st_mode & 0o777) == oct(0o700)
    loaded = models.load(stored.path, config)
    rows = np.random.default_rng(1).normal(size=(50, 3))
    np.testing.assert_allclose(loaded.predict_proba(rows), challenger.predict_proba(rows))
    assert (tmp_path / "versions" / "m" / "current").resolve() == Path(stored.path)
    store.close()


def _adaptation_run(store: Store) -> int:
    """A monitor with one window, a drift event and one adaptation run; the run's id."""
    from monitor.store.schema import Adaptation, DriftEvent, ReferenceVersion, Window

    monitor_id = store.monitor_id("m")
    with store._session() as session, session.begin():
        reference = ReferenceVersion(monitor_id=monitor_id, version=1, origin="test", rows=1, features={},
                                     summary=b"", active=True)
        session.add(reference)
        session.flush()
        window = Window(monitor_id=monitor_id, reference_id=reference.id, seq=1, rows=1, state="drift",
                        drift_share=1.0, drifted_features=[], missing_features=[])
        session.add(window)
        session.flush()
        event = DriftEvent(monitor_id=monitor_id, window_id=window.id, drift_share=1.0, features=[])
        session.add(event)
        session.flush()
        run = Adaptation(event_id=event.id, adapter="label_shift", state="running")
        session.add(run)
        session.flush()
        return run.id

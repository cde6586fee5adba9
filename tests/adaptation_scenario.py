"""A monitor whose live data shift away from a trained model's source domain, for adaptation tests."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from monitor.adaptation.tasks import ShiftedTask, make_task
from tests.helpers import write_csv


@dataclass
class Scenario:
    """Files on disk: training data, a pickled model, a live folder; and the task behind them."""

    directory: Path
    task: ShiftedTask
    features: list[str]
    model_path: Path
    training_path: Path
    live: Path

    def write_live(self, name: str, shifted: bool, rows: int, start: int = 0, labels: int = 0) -> None:
        """Write live rows: source-like (held-out source rows) or target ones; ``labels`` of them labelled."""
        domain = self.task.target if shifted else self.task.source
        truth = self.task.target_labels if shifted else self.task.source.labels
        features = domain.features[start:start + rows]
        columns: dict[str, Any] = {name: features[:, i] for i, name in enumerate(self.features)}
        label = [int(value) if index < labels else None for index, value in enumerate(truth[start:start + rows])]
        columns["label"] = pa.array(label, pa.int64())
        write_csv(self.live / name, pa.table(columns))

    def monitor(self, adapters: list[Any], **adaptation: Any) -> dict[str, Any]:
        """The monitor's raw configuration."""
        return {
            "name": "adapt",
            "source": {"type": "files", "options": {"path": str(self.live)}},
            "features": {"numeric": self.features},
            "window": {"rows": 500},
            "reference": {"path": str(self.training_path)},
            "measures": ["ks"],
            "drift": {"share": 0.5, "consecutive": 1},
            "model": {"path": str(self.model_path), "label": "label", "training_data": str(self.training_path),
                      "store": str(self.directory / "models")},
            "adaptation": {"adapters": adapters, "cooldown": 0, **adaptation},
        }


def build_scenario(directory: Path, kind: str = "affine", seed: int = 1, features: int = 4) -> Scenario:
    """Train a logistic regression on the task's source half; the other half plays the unshifted live data."""
    from sklearn.linear_model import LogisticRegression

    task = make_task(kind, n_classes=2, n_source=4000, n_target=3000, n_features=features, seed=seed)
    names = list(task.source.feature_names)
    training = task.source.take(np.arange(2000))
    model = LogisticRegression(max_iter=1000).fit(training.features, training.labels)
    directory.mkdir(parents=True, exist_ok=True)
    model_path = directory / "model.pkl"
    with open(model_path, "wb") as handle:
        pickle.dump(model, handle)
    os.chmod(model_path, 0o600)
    columns: dict[str, Any] = {name: training.features[:, i] for i, name in enumerate(names)}
    columns["label"] = training.labels.astype(np.int64)
    training_path = write_csv(directory / "training.csv", pa.table(columns))
    live = directory / "live"
    live.mkdir()
    held_out = ShiftedTask(**{**vars(task), "source": task.source.take(np.arange(2000, 4000))})
    return Scenario(directory, held_out, names, model_path, training_path, live)

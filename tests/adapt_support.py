"""Builders for the adaptation tests: a small torch MLP, a seeded source task and a drifted target."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from monitor.adaptation.contract import AdaptationContext, Domain, DriftInfo
from monitor.adaptation.model import Model, TorchModel

#: The factory tests hand to TorchModel and load_torch.
MLP_FACTORY = "tests.adapt_support:build_mlp"

#: Weights of the source task's logit: the last feature carries the most signal.
SOURCE_WEIGHTS = np.array([1.0, -1.0, 1.0, 2.0])

FEATURES = tuple(f"x{i}" for i in range(len(SOURCE_WEIGHTS)))


def build_mlp(features: int, hidden: int = 16, classes: int = 2) -> Any:
    """A one-hidden-layer ReLU network returning class logits, with an ``embed`` method."""
    from torch import nn

    class MLP(nn.Module):
        """features → hidden (ReLU) → classes."""

        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Linear(features, hidden)
            self.out = nn.Linear(hidden, classes)

        def embed(self, inputs: Any) -> Any:
            """The hidden layer's activations."""
            return self.hidden(inputs).relu()

        def forward(self, inputs: Any) -> Any:
            """Class logits."""
            return self.out(self.embed(inputs))

    return MLP()


def source_task(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian rows labelled by the sign of ``SOURCE_WEIGHTS · x`` plus a little noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, len(SOURCE_WEIGHTS)))
    labels = (features @ SOURCE_WEIGHTS + 0.3 * rng.normal(size=rows) > 0).astype(np.int64)
    return features, labels


def broken_target(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same task except that the last feature no longer relates to the label (pure noise)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, len(SOURCE_WEIGHTS)))
    kept = SOURCE_WEIGHTS.copy()
    kept[-1] = 0.0
    labels = (features @ kept + 0.3 * rng.normal(size=rows) > 0).astype(np.int64)
    return features, labels


def train_mlp(features: np.ndarray, labels: np.ndarray, seed: int = 0, epochs: int = 30,
              hidden: int = 16) -> TorchModel:
    """An MLP trained with Adam on these rows (full passes of 64-row batches)."""
    import torch

    torch.manual_seed(seed)
    options = {"features": features.shape[1], "hidden": hidden, "classes": 2}
    module = build_mlp(**options)
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(64):
            loss = torch.nn.functional.cross_entropy(module(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    module.eval()
    return TorchModel(module, [0, 1], MLP_FACTORY, options)


def context(tmp_path: Path, model: Model | None, source: Domain, target: Domain, seed: int = 0) -> AdaptationContext:
    """An AdaptationContext over these domains with a drift event on the last feature."""
    event = DriftInfo(id=7, window_seq=42, drift_share=0.25, features=(source.feature_names[-1],), measures=("ks",))
    return AdaptationContext(monitor="m", event=event, source=source, target=target, model=model,
                             workdir=tmp_path, log=logging.getLogger("tests.adapt"), seed=seed)


def domain(features: np.ndarray, labels: np.ndarray | None = None, labelled: np.ndarray | None = None) -> Domain:
    """A Domain over ``FEATURES``-style columns x0, x1, …"""
    names = tuple(f"x{i}" for i in range(features.shape[1]))
    return Domain(features, names, labels, labelled)


#: The factory of the small torch regressor.
REGRESSOR_FACTORY = "tests.adapt_support:build_regressor"


def build_regressor(features: int, hidden: int = 32) -> Any:
    """A one-hidden-layer ReLU network returning one number per row (shape (rows, 1)), with an ``embed`` method."""
    return build_mlp(features, hidden, classes=1)


def train_regressor(features: np.ndarray, values: np.ndarray, seed: int = 0, epochs: int = 40,
                    hidden: int = 32) -> TorchModel:
    """A torch regressor trained on these rows by its own ``refit`` (MSE, Adam), seeded."""
    options = {"features": features.shape[1], "hidden": hidden}
    untrained = TorchModel(build_regressor(**options), None, REGRESSOR_FACTORY, options,
                           {"epochs": epochs, "seed": seed}, task="regression")
    return untrained.refit(features, values)  # type: ignore[return-value]

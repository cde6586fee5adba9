"""Seeded tasks for performance estimation: covariate shift (the estimator's assumption holds) and concept shift."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LinearRegression, LogisticRegression

FEATURES = ("x0", "x1", "x2", "x3")


@dataclass
class Task:
    """A reference and windows, as column dicts, plus each window's held-out labels."""

    reference: dict[str, np.ndarray]
    windows: list[dict[str, np.ndarray]]
    labels: list[np.ndarray]
    probabilities: tuple[str, ...] = ()


def _true_logits(rng: np.random.Generator, classes: int) -> np.ndarray:
    return rng.normal(0.0, 1.2, size=(classes, len(FEATURES)))


def _draw_labels(rng: np.random.Generator, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    logits = x @ weights.T
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) > rng.random((len(x), 1))).argmax(axis=1)


def _frame(model: LogisticRegression, x: np.ndarray, sharpen: float) -> dict[str, np.ndarray]:
    proba = model.predict_proba(x) ** sharpen  # an over-confident model: calibration has work to do
    proba /= proba.sum(axis=1, keepdims=True)
    frame = {name: x[:, i] for i, name in enumerate(FEATURES)}
    frame.update({f"p{k}": proba[:, k] for k in range(proba.shape[1])})
    frame["prediction"] = proba.argmax(axis=1)
    return frame


def classification(seed: int, classes: int, windows: int = 10, rows: int = 2000, reference_rows: int = 5000,
                   max_shift: float = 1.0, flipped_share: tuple[float, ...] = (), swap: bool = False) -> Task:
    """Reference N(0, I); windows with their mean moved up to ``max_shift`` along a random direction.

    ``flipped_share`` (per window) replaces that share of rows with rows from a region far off the
    reference (x0 around 4.5) whose labels are the opposite of what the true rule gives there (concept
    shift); ``swap`` swaps sensors x0 and x1 in the later half of the windows (x1 reads 3 + 2 x0's).
    """
    rng = np.random.default_rng(seed)
    weights = _true_logits(rng, classes)
    scale = np.array([1.0, 2.0, 1.0, 1.0])
    offset = np.array([0.0, 3.0, 0.0, 0.0])

    def draw(n: int, shift: np.ndarray) -> np.ndarray:
        return rng.normal(size=(n, len(FEATURES))) + shift

    def labels(x: np.ndarray) -> np.ndarray:
        return _draw_labels(rng, weights, x)

    train = draw(3000, 0.0)
    model = LogisticRegression(max_iter=1000).fit(train * scale + offset, labels(train))
    ref_x = draw(reference_rows, 0.0)
    reference = _frame(model, ref_x * scale + offset, 2.0)
    reference["y"] = labels(ref_x)
    task = Task(reference, [], [], tuple(f"p{k}" for k in range(classes)))
    direction = rng.normal(size=len(FEATURES))
    direction /= np.linalg.norm(direction)
    for i in range(windows):
        x = draw(rows, direction * max_shift * i / max(windows - 1, 1))
        y = labels(x)
        share = flipped_share[i] if i < len(flipped_share) else 0.0
        far = int(round(share * rows))
        if far:
            x[:far] = rng.normal(size=(far, len(FEATURES))) * 0.5 + np.array([4.5, 0.0, 0.0, 0.0])
            y[:far] = (labels(x[:far]) + 1) % classes
        observed = x * scale + offset
        if swap and i >= windows // 2:
            observed[:, [0, 1]] = observed[:, [1, 0]]
        task.windows.append(_frame(model, observed, 2.0))
        task.labels.append(y)
    return task


def regression(seed: int, windows: int = 10, rows: int = 2000, reference_rows: int = 5000,
               max_shift: float = 1.0) -> Task:
    """y = sin-ish signal + noise whose spread grows with |x0|; windows move along x0 (covariate shift)."""
    rng = np.random.default_rng(seed)

    def draw(n: int, shift: float) -> np.ndarray:
        x = rng.normal(size=(n, len(FEATURES)))
        x[:, 0] += shift
        return x

    def target(x: np.ndarray) -> np.ndarray:
        return 2 * x[:, 0] + np.sin(2 * x[:, 1]) + x[:, 2] * x[:, 3] + rng.normal(size=len(x)) * (0.3 + np.abs(x[:, 0]))

    train = draw(3000, 0.0)
    model = LinearRegression().fit(train, target(train))

    def frame(x: np.ndarray) -> dict[str, np.ndarray]:
        out = {name: x[:, i] for i, name in enumerate(FEATURES)}
        out["prediction"] = model.predict(x)
        return out

    ref_x = draw(reference_rows, 0.0)
    reference = frame(ref_x)
    reference["y"] = target(ref_x)
    task = Task(reference, [], [])
    for i in range(windows):
        x = draw(rows, max_shift * i / max(windows - 1, 1))
        task.windows.append(frame(x))
        task.labels.append(target(x))
    return task

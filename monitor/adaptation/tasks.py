"""Seeded shifted classification tasks: a labelled source, an unlabelled target and its hidden truth.

The source is a mixture: each class draws its rows from two Gaussian components sharing one
correlated covariance, so p(y|x) is smooth but not exactly linear. The target differs by:

* ``covariate``     - rows of the source model kept with an x-dependent probability (rejection
                      sampling): p(y|x) is unchanged and the target lies inside the source support;
* ``label``         - the class priors change, p(x|y) does not;
* ``affine``        - source-distributed rows pass through a per-feature gain and offset (a sensor
                      recalibration), labels travel with the rows; the target leaves the source support;
* ``subspace_flip`` - labels change class in a half-space of the features (p(y|x) changes where no
                      label-free method can see it), plus a mild covariate shift so drift is detected;
* ``none``          - no shift: the target is drawn like the source (nothing should be promoted);
* ``swap``          - two sensors swapped: the first two features trade columns (standardised to the same
                      scale, so each column's marginal barely moves), labels travel with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from monitor.adaptation.contract import Domain

Kind = Literal["covariate", "label", "affine", "subspace_flip", "none", "swap"]
KINDS: tuple[Kind, ...] = ("covariate", "label", "affine", "subspace_flip", "none", "swap")

#: Distance of the class centres from the origin, in units of the noise scale.
_SEPARATION = 1.35
#: Spread of a class's two components around the class centre.
_COMPONENT_SPREAD = 0.8


@dataclass(frozen=True)
class ShiftedTask:
    """A source domain with labels, a target domain without, and the target's true labels."""

    kind: Kind
    source: Domain
    target: Domain
    target_labels: np.ndarray
    description: str


@dataclass(frozen=True)
class _Mixture:
    """Class-conditional Gaussian mixtures with a shared covariance."""

    means: np.ndarray          # (classes, 2 components, features)
    chol: np.ndarray           # Cholesky factor of the shared covariance
    priors: np.ndarray

    def sample(self, rows: int, rng: np.random.Generator,
               priors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows and their labels, the labels drawn from ``priors`` (default: the source priors)."""
        labels = rng.choice(len(self.priors), size=rows, p=self.priors if priors is None else priors)
        component = rng.integers(0, 2, size=rows)
        noise = rng.standard_normal((rows, self.chol.shape[0])) @ self.chol.T
        return self.means[labels, component] + noise, labels


def make_task(kind: Kind, n_classes: int = 2, n_source: int = 4000, n_target: int = 4000, n_features: int = 8,
              seed: int = 0) -> ShiftedTask:
    """A shifted task of this kind; the same arguments always give the same rows."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
    if n_classes < 2 or n_features < 2:
        raise ValueError("a task needs at least 2 classes and 2 features")
    rng = np.random.default_rng([seed, KINDS.index(kind), n_classes])
    mixture = _mixture(n_classes, n_features, rng)
    source_x, source_y = mixture.sample(n_source, rng)
    target_x, target_y, description = _SHIFTS[kind](mixture, n_target, rng)
    names = tuple(f"x{i}" for i in range(n_features))
    return ShiftedTask(kind, Domain(source_x, names, source_y), Domain(target_x, names), target_y, description)


def _mixture(n_classes: int, n_features: int, rng: np.random.Generator) -> _Mixture:
    centres = rng.standard_normal((n_classes, n_features))
    centres *= _SEPARATION / np.linalg.norm(centres, axis=1, keepdims=True)
    offsets = rng.standard_normal((n_classes, 2, n_features)) * _COMPONENT_SPREAD / np.sqrt(n_features)
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    covariance = rotation @ np.diag(rng.uniform(0.5, 1.5, n_features)) @ rotation.T
    scale = rng.uniform(0.5, 3.0, n_features)  # features on different scales, as real ones are
    means = (centres[:, None, :] + offsets) * scale
    chol = np.diag(scale) @ np.linalg.cholesky(covariance)
    return _Mixture(means, chol, np.full(n_classes, 1.0 / n_classes))


def _rejection(mixture: _Mixture, rows: int, rng: np.random.Generator, slope: float,
               centre: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source rows kept with probability sigmoid(slope·(u·z - centre)), z standardised, u random."""
    direction = rng.standard_normal(mixture.chol.shape[0])
    direction /= np.linalg.norm(direction)
    kept_x, kept_y = [], []
    while sum(len(x) for x in kept_x) < rows:
        x, y = mixture.sample(4 * rows, rng)
        z = (x - x.mean(axis=0)) / x.std(axis=0)
        keep = rng.random(len(x)) < 1.0 / (1.0 + np.exp(-slope * (z @ direction - centre)))
        kept_x.append(x[keep])
        kept_y.append(y[keep])
    return np.vstack(kept_x)[:rows], np.concatenate(kept_y)[:rows], direction


def _covariate(mixture: _Mixture, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    x, y, _ = _rejection(mixture, rows, rng, slope=2.0, centre=0.5)
    return x, y, "covariate shift: source rows kept with a probability rising along a random direction"


def _label(mixture: _Mixture, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    n_classes = len(mixture.priors)
    shape = np.array([0.85, 0.15]) if n_classes == 2 else 0.3 ** np.arange(n_classes)
    priors = rng.permutation(shape / shape.sum())
    x, y = mixture.sample(rows, rng, priors)
    return x, y, f"label shift: class priors {np.round(mixture.priors, 2).tolist()} -> {np.round(priors, 2).tolist()}"


def _affine(mixture: _Mixture, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    x, y = mixture.sample(rows, rng)
    n_features = x.shape[1]
    gain = rng.uniform(0.6, 1.6, n_features)
    # offsets lean towards the second class, so the shift moves rows across the class boundary
    offset = np.sign(_discriminant(mixture)) * rng.uniform(1.0, 2.0, n_features) * x.std(axis=0)
    return x * gain + offset, y, "conditional affine shift: each feature recalibrated by a gain and an offset"


def _discriminant(mixture: _Mixture) -> np.ndarray:
    """The linear discriminant between the first two classes: Σ⁻¹(m₁ - m₀)."""
    centres = mixture.means.mean(axis=1)
    return np.linalg.solve(mixture.chol @ mixture.chol.T, centres[1] - centres[0])


def _subspace_flip(mixture: _Mixture, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    x, y, _ = _rejection(mixture, rows, rng, slope=1.0, centre=0.0)
    direction = rng.standard_normal(x.shape[1])
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    flipped = z @ (direction / np.linalg.norm(direction)) > 0.5
    y = np.where(flipped, (y + 1) % len(mixture.priors), y)
    return x, y, f"concept shift: labels move to the next class in a half-space ({flipped.mean():.0%} of rows)"


def _none(mixture: _Mixture, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    x, y = mixture.sample(rows, rng)
    return x, y, "no shift: the target is drawn like the source"


def _swap(mixture: _Mixture, rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    x, y = mixture.sample(rows, rng)
    scale = np.sqrt(np.diag(mixture.chol @ mixture.chol.T))
    z = x[:, :2] / scale[:2]
    x = x.copy()
    x[:, 0], x[:, 1] = z[:, 1] * scale[0], z[:, 0] * scale[1]
    return x, y, "sensors swapped: the first two features trade columns (rescaled), labels travel with the rows"


_SHIFTS: dict[str, Callable[[_Mixture, int, np.random.Generator], tuple[np.ndarray, np.ndarray, str]]] = {
    "covariate": _covariate, "label": _label, "affine": _affine, "subspace_flip": _subspace_flip,
    "none": _none, "swap": _swap}


RegressionKind = Literal["covariate", "affine", "none", "concept"]
#: The regression shifts the label-free gate is tested on (``concept`` needs target labels: see below).
REGRESSION_KINDS: tuple[RegressionKind, ...] = ("covariate", "affine", "none")


def make_regression_task(kind: RegressionKind, n_source: int = 4000, n_target: int = 4000, n_features: int = 6,
                         seed: int = 0) -> ShiftedTask:
    """A shifted regression task: y = w·x + 0.5·(u·x)² + noise on correlated Gaussian rows, the target moved by

    * ``covariate`` - source rows kept with a probability rising along a random direction (p(y|x) unchanged; a
                      linear model fitted to the source is misspecified where the target now lies);
    * ``affine``    - each feature recalibrated by a gain and an offset, the targets travel with the rows;
    * ``none``      - no shift;
    * ``concept``   - a conditional shift: rows drawn like the source, but the linear effect of the feature that
                      matters most is reversed (p(y|x) changed; only target labels can show it).
    """
    kinds = (*REGRESSION_KINDS, "concept")
    if kind not in kinds:
        raise ValueError(f"kind must be one of {', '.join(kinds)} (got {kind!r})")
    rng = np.random.default_rng([seed, kinds.index(kind), 99])
    rotation, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    scale = rng.uniform(0.5, 3.0, n_features)
    chol = np.diag(scale) @ np.linalg.cholesky(rotation @ np.diag(rng.uniform(0.5, 1.5, n_features)) @ rotation.T)
    weights = rng.standard_normal(n_features) / scale
    bend = rng.standard_normal(n_features)
    bend /= np.linalg.norm(bend) * scale

    def sample(rows: int) -> tuple[np.ndarray, np.ndarray]:
        x = rng.standard_normal((rows, n_features)) @ chol.T
        return x, x @ weights + 0.5 * (x @ bend) ** 2 + 0.3 * rng.standard_normal(rows)

    source_x, source_y = sample(n_source)
    if kind == "covariate":
        direction = rng.standard_normal(n_features)
        direction /= np.linalg.norm(direction)
        x, y = sample(6 * n_target)
        z = (x - x.mean(axis=0)) / x.std(axis=0)
        keep = rng.random(len(x)) < 1.0 / (1.0 + np.exp(-2.0 * (z @ direction - 0.5)))
        target_x, target_y = x[keep][:n_target], y[keep][:n_target]
        description = "covariate shift: rows kept with a probability rising along a random direction"
    elif kind == "affine":
        target_x, target_y = sample(n_target)
        target_x = target_x * rng.uniform(0.6, 1.6, n_features) + rng.uniform(1.0, 2.0, n_features) * scale
        description = "conditional affine shift: each feature recalibrated by a gain and an offset"
    elif kind == "concept":
        target_x, target_y = sample(n_target)
        strongest = int(np.argmax(np.abs(weights) * scale))
        target_y = target_y - 2.0 * weights[strongest] * target_x[:, strongest]
        description = f"conditional shift: the linear effect of x{strongest} reversed"
    else:
        target_x, target_y = sample(n_target)
        description = "no shift"
    names = tuple(f"x{i}" for i in range(n_features))
    return ShiftedTask(kind, Domain(source_x, names, source_y), Domain(target_x, names), target_y,  # type: ignore[arg-type]
                       description)

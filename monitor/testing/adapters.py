"""The adapter conformance checks, on seeded shifted tasks."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, get_args

import numpy as np



class CentroidClassifier:
    """A tiny numpy classifier for adapter tests: softmax over negative squared distances to class means."""

    loader = "test-centroid"

    def __init__(self, centroids: np.ndarray, classes: np.ndarray) -> None:
        self.centroids = centroids
        self.classes = classes

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> CentroidClassifier:
        """Weighted class means."""
        weights = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        classes = np.unique(labels)
        centroids = np.stack([np.average(features[labels == c], axis=0, weights=weights[labels == c]) for c in classes])
        return cls(centroids, classes)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Softmax of minus half the squared distance to each class mean."""
        logits = -0.5 * ((features[:, None, :] - self.centroids[None]) ** 2).sum(axis=2)
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The most probable class."""
        return self.classes[np.argmax(self.predict_proba(features), axis=1)]

    def refit(self, features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray | None = None) -> Any:
        """A new classifier fitted on these rows."""
        return CentroidClassifier.fit(features, labels, sample_weight)

    def embed(self, features: np.ndarray) -> None:
        """No learnt representation."""
        return None

    def save(self, directory: Path) -> dict[str, Any]:
        """Nothing to save in tests."""
        return {"loader": self.loader, "file": "", "options": {}}


def adaptation_context(kind: str = "affine", seed: int = 0, target_labels: int = 0, rows: int = 1500,
                       workdir: Path | None = None) -> Any:
    """An AdaptationContext over a seeded shifted task (``monitor.adaptation.tasks``) with a fitted model.

    ``target_labels`` of the target rows carry their label, as if they had arrived.
    """
    from monitor.adaptation import AdaptationContext, Domain, DriftInfo
    from monitor.adaptation.tasks import make_task

    task = make_task(kind, n_classes=2, n_source=rows, n_target=rows, n_features=4, seed=seed)
    labelled = np.zeros(task.target.rows, dtype=bool)
    labelled[:target_labels] = True
    target = Domain(task.target.features, task.target.feature_names, task.target_labels, labelled)
    model = CentroidClassifier.fit(task.source.features, task.source.labels)
    return AdaptationContext(
        monitor="conformance", event=DriftInfo(1, 1, 1.0, task.source.feature_names, ("ks",)),
        source=task.source, target=target, model=model,  # type: ignore[arg-type]
        workdir=workdir or Path(tempfile.mkdtemp(prefix="driftd-adapter-check-")),
        log=logging.getLogger("driftd.adapter.check"), seed=seed,
        artifacts=Path(tempfile.mkdtemp(prefix="driftd-adapter-artifacts-")))


def check_adapter(make: Callable[[], Any], context: Callable[[], Any] | None = None, *,
                  cancel_within: float = 5.0) -> Any:
    """Assert the adapter contract; returns the result of the normal run for further checks.

    Checked: ``adapt(ctx)`` returns an AdaptationResult whose remedy and assumption are known
    values, whose ``summary()`` is JSON; a challenger model answers ``predict_proba`` with one
    probability row per input row over the champion's classes; sample weights are one finite,
    non-negative number per source row; a feature map is a square affine map over the features;
    prior ratios are one positive number per class; the champion model is left as it was; and a
    run whose context is cancelled stops with AdaptationCancelled within ``cancel_within`` seconds.
    ``context()`` builds the AdaptationContext (default: ``adaptation_context()``).
    """
    from monitor.adaptation import AdaptationCancelled, AdaptationResult
    from monitor.adaptation.contract import Assumption, Remedy

    build = context or adaptation_context
    ctx = build()
    before = None if ctx.model is None else ctx.model.predict_proba(ctx.target.features)
    result = make().adapt(ctx)
    assert isinstance(result, AdaptationResult), f"adapt() returned {type(result).__name__}, not an AdaptationResult"
    assert result.remedy in get_args(Remedy), f"unknown remedy {result.remedy!r}"
    assert result.assumption in get_args(Assumption), f"unknown assumption {result.assumption!r}"
    json.dumps(result.summary())
    if ctx.model is not None:
        after = ctx.model.predict_proba(ctx.target.features)
        assert np.array_equal(before, after), "adapt() changed the champion model; build a new one instead"
    _check_remedy(result, ctx)

    cancelled = build()
    cancelled.cancelled.set()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = make().adapt(cancelled)
        except BaseException as error:  # noqa: BLE001 - judged below
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(cancel_within)
    assert not thread.is_alive(), f"a cancelled run did not stop within {cancel_within:g}s (check ctx.cancelled)"
    error = outcome.get("error")
    assert isinstance(error, AdaptationCancelled), (
        "a run whose context is already cancelled must raise AdaptationCancelled (call ctx.check_cancelled()), "
        f"got {'a result' if 'result' in outcome else repr(error)}")
    return result


def _check_remedy(result: Any, ctx: Any) -> None:
    model = result.model
    if model is not None:
        proba = np.asarray(model.predict_proba(ctx.target.features))
        assert proba.shape == (ctx.target.rows, len(ctx.model.classes)), (
            f"the challenger's predict_proba has shape {proba.shape}, expected {(ctx.target.rows, len(ctx.model.classes))}")
        assert np.allclose(proba.sum(axis=1), 1.0), "the challenger's probabilities do not sum to 1 per row"
        assert list(model.classes) == list(ctx.model.classes), "the challenger has other classes than the champion"
    if result.weights is not None:
        weights = np.asarray(result.weights, dtype=float)
        assert weights.shape == (ctx.source.rows,), f"{weights.shape} sample weights for {ctx.source.rows} source rows"
        assert np.isfinite(weights).all() and (weights >= 0).all(), "sample weights must be finite and non-negative"
    if result.feature_map is not None:
        features = len(ctx.source.feature_names)
        assert result.feature_map.matrix.shape == (features, features), "a feature map must be square over the features"
        assert result.feature_map.offset.shape == (features,), "a feature map's offset needs one value per feature"
    if result.prior_ratios is not None:
        ratios = np.asarray(result.prior_ratios, dtype=float)
        assert ratios.shape == (len(ctx.model.classes),) and (ratios > 0).all(), "one positive prior ratio per class"


def check_adapter_bad_options(adapter_class: type, bad_options: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Assert each ``(option, options)`` pair fails at construction with an AdapterError naming ``option``."""
    from monitor.adaptation import AdapterError

    for option, options in bad_options:
        try:
            adapter_class(options)
        except AdapterError as error:
            assert option in str(error), f"{options!r}: the error does not name option {option!r}: {error}"
        else:
            raise AssertionError(f"{options!r} was accepted; expected an AdapterError naming {option!r}")

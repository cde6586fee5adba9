"""The built-in adapters: feature maps, prior estimation, importance weights, options and refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from monitor.adaptation.contract import AdaptationContext, Adapter, AdapterError, Domain, DriftInfo
from monitor.adaptation.model import AdaptedModel, AffineMap, Model, SklearnModel
from monitor.adaptation.tasks import ShiftedTask, make_task
from monitor.plugins import _VALIDATORS
from plugins.adapters import feature_alignment, importance_weighting, label_shift
from plugins.adapters.feature_alignment import FeatureAlignment, compose, fit_map
from plugins.adapters.importance_weighting import ImportanceWeighting
from plugins.adapters.label_shift import LabelShift

NAMES = tuple(f"x{i}" for i in range(4))


def context(source: Domain, target: Domain, model: Model | None, tmp_path: Path) -> AdaptationContext:
    """An adaptation context over these domains."""
    return AdaptationContext("m", DriftInfo(1, 1, 1.0, NAMES), source, target, model, tmp_path,
                             logging.getLogger("test"))


def fitted(domain: Domain) -> SklearnModel:
    """A logistic regression trained on the domain's labelled rows."""
    return SklearnModel(LogisticRegression(max_iter=1000).fit(domain.features, domain.labels))


def accuracy(model: Model, features: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows the model gets right."""
    return float(np.mean(model.predict(features) == labels))


def recalibrated(correlated: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source rows, their per-feature recalibration (gain, offset) and the target rows."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(4, 4)) if correlated else np.diag([1.0, 2.0, 0.5, 3.0])
    source = rng.standard_normal((5000, 4)) @ mixing.T + [1.0, -2.0, 0.0, 4.0]
    gain, offset = np.array([1.5, 0.7, 1.2, 0.9]), np.array([2.0, -1.0, 0.5, 3.0])
    return source, gain, offset, source * gain + offset


@pytest.mark.parametrize("method", ["ot", "coral"])
def test_maps_recover_a_per_feature_recalibration(method: str) -> None:
    source, gain, offset, target = recalibrated(correlated=False)
    to_source = fit_map(method, target, source, eps=0.0)
    # with independent features both maps are the true inverse: x ↦ (x - offset) / gain
    assert np.abs(to_source.matrix - np.diag(1 / gain)).max() < 1e-2
    assert np.abs(to_source.offset + offset / gain).max() < 5e-2
    assert np.abs(to_source(target) - source).max() < 5e-2


def test_ot_map_recovers_the_recalibration_of_correlated_features() -> None:
    source, gain, offset, target = recalibrated(correlated=True, seed=1)
    to_source = fit_map("ot", target, source, eps=0.0)
    assert np.abs(to_source.matrix - np.diag(1 / gain)).max() < 1e-2
    assert np.abs(to_source(target) - source).max() < 0.1


def test_ot_map_pushes_the_target_moments_onto_the_source_ones() -> None:
    rng = np.random.default_rng(2)
    cov_s, cov_t = (lambda a: a @ a.T + 0.1 * np.eye(4))(rng.normal(size=(4, 4))), \
        (lambda a: a @ a.T + 0.1 * np.eye(4))(rng.normal(size=(4, 4)))
    source = rng.multivariate_normal([1, 2, 3, 4], cov_s, 4000)
    target = rng.multivariate_normal([-1, 0, 5, 2], cov_t, 4000)
    to_source = fit_map("ot", target, source, eps=0.0)
    mapped = to_source(target)
    assert np.allclose(mapped.mean(axis=0), source.mean(axis=0), atol=1e-8)
    assert np.allclose(np.cov(mapped, rowvar=False), np.cov(source, rowvar=False), atol=1e-6)
    assert np.allclose(to_source.matrix, to_source.matrix.T)  # the Monge map is symmetric positive definite
    assert np.all(np.linalg.eigvalsh(to_source.matrix) > 0)


def test_compose_applies_the_inner_map_first() -> None:
    inner = AffineMap(np.diag([2.0, 3.0]), np.array([1.0, 0.0]))
    outer = AffineMap(np.eye(2) * 0.5, np.array([0.0, 1.0]))
    rows = np.array([[1.0, 1.0], [0.0, -2.0]])
    assert np.allclose(compose(outer, inner)(rows), outer(inner(rows)))
    assert compose(outer, None) is outer


@pytest.mark.parametrize("direction", ["inverse", "forward"])
def test_feature_alignment_undoes_an_affine_shift(direction: str, tmp_path: Path) -> None:
    task = make_task("affine", n_classes=3, n_source=3000, n_target=3000, seed=1)
    champion = fitted(task.source)
    result = FeatureAlignment({"direction": direction}).adapt(context(task.source, task.target, champion, tmp_path))
    assert (result.remedy, result.assumption, result.details) == ("feature_map", "map",
                                                                  {"method": "ot", "direction": direction})
    before = accuracy(champion, task.target.features, task.target_labels)
    assert accuracy(result.model, task.target.features, task.target_labels) > before + 0.2
    # the recorded map takes raw target rows back to the source in either direction
    assert result.feature_map is not None
    mapped = result.feature_map(task.target.features)
    assert np.abs(mapped.mean(axis=0) - task.source.features.mean(axis=0)).max() < 1e-6
    if direction == "inverse":
        assert isinstance(result.model, AdaptedModel) and result.model.base is champion


def test_feature_alignment_composes_with_an_existing_map(tmp_path: Path) -> None:
    task = make_task("affine", n_source=2000, n_target=2000, seed=2)
    champion = fitted(task.source)
    half = AffineMap(np.eye(8) * 0.9, np.full(8, 0.3))
    previous = AdaptedModel(champion, input_map=half, prior_ratios=np.array([1.2, 0.8]))
    result = FeatureAlignment({}).adapt(context(task.source, task.target, previous, tmp_path))
    assert isinstance(result.model, AdaptedModel) and result.model.base is champion
    assert result.model.input_map is result.feature_map
    assert result.model.prior_ratios.tolist() == [1.2, 0.8]
    direct = FeatureAlignment({}).adapt(context(task.source, task.target, champion, tmp_path)).feature_map
    assert np.allclose(result.feature_map(task.target.features), direct(task.target.features), atol=1e-6)


@pytest.mark.parametrize(("n_classes", "method"), [(2, "em"), (2, "bbse"), (3, "em"), (3, "bbse")])
def test_label_shift_recovers_the_target_priors(n_classes: int, method: str, tmp_path: Path) -> None:
    task = make_task("label", n_classes=n_classes, n_source=3000, n_target=4000, seed=3)
    champion = fitted(task.source)
    result = LabelShift({"method": method}).adapt(context(task.source, task.target, champion, tmp_path))
    truth = np.bincount(task.target_labels, minlength=n_classes) / len(task.target_labels)
    estimated = np.asarray(result.details["target_priors"])
    assert np.abs(estimated - truth).max() < 0.05
    assert (result.remedy, result.assumption) == ("prior_ratios", "label")
    assert np.allclose(result.prior_ratios, estimated / np.asarray(result.details["source_priors"]), rtol=1e-6)
    assert accuracy(result.model, task.target.features, task.target_labels) > \
        accuracy(champion, task.target.features, task.target_labels) + 0.03


def test_label_shift_replaces_earlier_ratios_and_keeps_the_map(tmp_path: Path) -> None:
    task = make_task("label", n_source=2000, n_target=2000, seed=4)
    champion = fitted(task.source)
    identity = AffineMap(np.eye(8), np.zeros(8))
    fresh = LabelShift({}).adapt(context(task.source, task.target, champion, tmp_path))
    again = LabelShift({}).adapt(context(task.source, task.target,
                                         AdaptedModel(champion, identity, np.array([5.0, 0.2])), tmp_path))
    assert np.allclose(again.prior_ratios, fresh.prior_ratios, rtol=1e-6)
    assert again.model.input_map is identity


@pytest.mark.parametrize("method", ["classifier", "ulsif", "kliep"])
def test_importance_weighting_retrains_with_clipped_weights(method: str, tmp_path: Path) -> None:
    task = make_task("covariate", n_source=1500, n_target=1500, seed=5)
    champion = fitted(task.source)
    result = ImportanceWeighting({"method": method, "clip": 4.0, "centres": 50}).adapt(
        context(task.source, task.target, champion, tmp_path))
    assert (result.remedy, result.assumption) == ("sample_weights", "covariate")
    weights = result.weights
    assert weights is not None and len(weights) == task.source.rows
    assert weights.mean() == pytest.approx(1.0) and weights.max() <= 4.0 + 1e-9
    details = result.details
    assert details["method"] == method and 0 < details["ess_share"] <= 1
    assert details["ess"] == pytest.approx(details["ess_share"] * task.source.rows)
    assert details["weight_quantiles"]["max"] == pytest.approx(weights.max())
    assert isinstance(result.model, SklearnModel) and result.model is not champion
    # the target's rows are where the weights are high
    ratio_at_target_side = np.corrcoef(weights, _true_side(task))[0, 1]
    assert ratio_at_target_side > 0.3


def _true_side(task: ShiftedTask) -> np.ndarray:
    """How target-like each source row is, by a classifier fitted with sklearn (an independent check)."""
    both = np.vstack([task.source.features, task.target.features])
    side = np.r_[np.zeros(task.source.rows), np.ones(task.target.rows)]
    return LogisticRegression(max_iter=1000).fit(both, side).predict_proba(task.source.features)[:, 1]


def test_importance_weighting_keeps_the_input_map_and_drops_ratios(tmp_path: Path) -> None:
    task = make_task("covariate", n_source=1000, n_target=1000, seed=6)
    identity = AffineMap(np.eye(8), np.zeros(8))
    previous = AdaptedModel(fitted(task.source), identity, np.array([2.0, 0.5]))
    result = ImportanceWeighting({}).adapt(context(task.source, task.target, previous, tmp_path))
    assert isinstance(result.model, AdaptedModel)
    assert result.model.input_map is identity and result.model.prior_ratios is None


@pytest.mark.parametrize(("adapter", "options", "message"), [
    (ImportanceWeighting, {"method": "magic"}, "option 'method'"),
    (ImportanceWeighting, {"clip": 0.5}, "option 'clip'"),
    (ImportanceWeighting, {"folds": 1}, "option 'folds'"),
    (ImportanceWeighting, {"bogus": 1}, "option 'bogus' is unknown"),
    (FeatureAlignment, {"direction": "sideways"}, "option 'direction'"),
    (FeatureAlignment, {"eps": -1}, "option 'eps'"),
    (LabelShift, {"method": "mle"}, "option 'method'"),
    (LabelShift, {"min_ratio": 0}, "option 'min_ratio'"),
])
def test_bad_options_name_the_option(adapter: type[Adapter], options: dict[str, object], message: str) -> None:
    with pytest.raises(AdapterError, match=f"{adapter.type_name} adapter: .*{message}"):
        adapter(options)


ADAPTERS = [ImportanceWeighting({}), FeatureAlignment({}), FeatureAlignment({"direction": "forward"}), LabelShift({})]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: f"{a.type_name}-{a.options}")
def test_no_model_is_an_adapter_error(adapter: Adapter, tmp_path: Path) -> None:
    task = make_task("covariate", n_source=200, n_target=200, seed=7)
    with pytest.raises(AdapterError, match="no model"):
        adapter.adapt(context(task.source, task.target, None, tmp_path))


@pytest.mark.parametrize("adapter", [a for a in ADAPTERS if a.options != {} or a.type_name != "feature_alignment"],
                         ids=lambda a: f"{a.type_name}-{a.options}")
def test_an_unlabelled_source_is_an_adapter_error(adapter: Adapter, tmp_path: Path) -> None:
    task = make_task("covariate", n_source=200, n_target=200, seed=8)
    unlabelled = Domain(task.source.features, task.source.feature_names)
    with pytest.raises(AdapterError, match="no labels"):
        adapter.adapt(context(unlabelled, task.target, fitted(task.source), tmp_path))


def test_inverse_alignment_needs_no_source_labels(tmp_path: Path) -> None:
    task = make_task("affine", n_source=500, n_target=500, seed=9)
    unlabelled = Domain(task.source.features, task.source.feature_names)
    result = FeatureAlignment({}).adapt(context(unlabelled, task.target, fitted(task.source), tmp_path))
    assert result.feature_map is not None


def test_labels_the_model_does_not_know_are_an_adapter_error(tmp_path: Path) -> None:
    task = make_task("label", n_source=300, n_target=300, seed=10)
    relabelled = Domain(task.source.features, task.source.feature_names, task.source.labels + 5)
    with pytest.raises(AdapterError, match="not among the model's classes"):
        LabelShift({}).adapt(context(relabelled, task.target, fitted(task.source), tmp_path))


def test_a_model_that_cannot_be_retrained_is_an_adapter_error(tmp_path: Path) -> None:
    task = make_task("covariate", n_source=300, n_target=300, seed=11)

    class Frozen(Model):
        classes = np.array([0, 1])

        def predict_proba(self, features: np.ndarray) -> np.ndarray:
            return np.full((len(features), 2), 0.5)

    with pytest.raises(AdapterError, match="cannot retrain"):
        ImportanceWeighting({}).adapt(context(task.source, task.target, Frozen(), tmp_path))


def test_the_plugins_provide_their_adapters() -> None:
    for module, name, cls in [(importance_weighting, "importance_weighting", ImportanceWeighting),
                              (feature_alignment, "feature_alignment", FeatureAlignment),
                              (label_shift, "label_shift", LabelShift)]:
        provided = module.driftd_adapters()
        assert provided == {name: cls} and cls.type_name == name
        assert _VALIDATORS["adapters"](cls)

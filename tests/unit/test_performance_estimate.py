"""Performance estimated without labels: CBPE for classifiers, DLE for regressors, and the assumption check."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score  # noqa: E402

from monitor.adaptation.model import SklearnModel  # noqa: E402
from monitor.performance import EstimationError, PerformanceEstimator, PerformanceSpec, estimate  # noqa: E402
from monitor.performance.metrics import _expected_auc  # noqa: E402
from tests.performance_scenario import FEATURES, classification, regression  # noqa: E402

SEEDS = range(20)


def _fit(task, **options) -> PerformanceEstimator:
    spec = PerformanceSpec(target="y", probabilities=task.probabilities, features=FEATURES, prediction="prediction",
                           **options)
    return PerformanceEstimator.fit(task.reference, spec)


@pytest.mark.parametrize("classes", [2, 3])
def test_estimated_accuracy_tracks_realized_under_covariate_shift(classes: int) -> None:
    errors, reliable, auc_errors = [], [], []
    for seed in SEEDS:
        task = classification(seed, classes)
        estimator = _fit(task)
        for window, labels in zip(task.windows, task.labels):
            estimated = estimator.estimate_window(window)
            realized = estimator.realized(window, labels)
            errors.append(abs(estimated.get("accuracy").value - realized["accuracy"]))
            auc_errors.append(abs(estimated.get("roc_auc").value - realized["roc_auc"]))
            reliable.append(estimated.reliable)
    assert len(errors) >= 200
    assert np.mean(np.array(errors) < 0.03) >= 0.90, sorted(errors)[-20:]
    assert np.mean(reliable) >= 0.90, "covariate shift inside the support must not be called unreliable"
    assert np.mean(auc_errors) < 0.02


def test_estimated_mae_and_rmse_track_realized_for_a_regressor() -> None:
    ratios = {"mae": [], "rmse": []}
    for seed in range(20):
        task = regression(seed)
        spec = PerformanceSpec(target="y", task="regression", features=FEATURES, prediction="prediction")
        estimator = PerformanceEstimator.fit(task.reference, spec)
        for window, targets in zip(task.windows, task.labels):
            estimated = estimator.estimate_window(window)
            realized = estimator.realized(window, targets)
            for metric in ratios:
                ratios[metric].append(estimated.get(metric).value / realized[metric] - 1)
    mae = np.abs(ratios["mae"])
    assert np.mean(mae < 0.10) >= 0.95 and mae.max() < 0.15, sorted(mae)[-10:]
    assert np.mean(np.abs(ratios["rmse"]) < 0.15) >= 0.90


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("shift", ["labels flipped in a region", "swapped sensors"])
def test_a_wrong_estimate_under_concept_shift_is_marked_unreliable(classes: int, shift: str) -> None:
    wrong = 0
    for seed in SEEDS:
        if shift == "swapped sensors":
            task = classification(seed, classes, max_shift=0.0, swap=True)
        else:
            task = classification(seed, classes, max_shift=0.0,
                                  flipped_share=(0, .01, .02, .03, .04, .06, .08, .1, .15, .3))
        estimator = _fit(task)
        for index, (window, labels) in enumerate(zip(task.windows, task.labels)):
            estimated = estimator.estimate_window(window)
            error = abs(estimated.get("accuracy").value - estimator.realized(window, labels)["accuracy"])
            if error > 0.05:
                wrong += 1
                assert not estimated.reliable, f"seed {seed} window {index}: off by {error:.3f}, called reliable"
                assert "cannot be known without labels" in estimated.reason
    assert wrong >= 40, "the scenario must produce wrong estimates for the check to mean anything"


def test_realized_metrics_are_scikit_learns() -> None:
    task = classification(3, 3, windows=2)
    estimator = _fit(task, positive_class=2)
    window, labels = task.windows[1], task.labels[1]
    realized = estimator.realized(window, labels)
    predicted = window["prediction"]
    scores = np.column_stack([window[c] for c in task.probabilities])
    assert realized["accuracy"] == pytest.approx(accuracy_score(labels, predicted))
    assert realized["f1"] == pytest.approx(f1_score(labels == 2, predicted == 2))
    assert realized["precision"] == pytest.approx(precision_score(labels == 2, predicted == 2))
    assert realized["recall"] == pytest.approx(recall_score(labels == 2, predicted == 2))
    assert realized["roc_auc"] == pytest.approx(roc_auc_score(labels, scores, multi_class="ovr"))


def test_the_soft_label_auc_is_the_ordinary_auc_on_hard_labels() -> None:
    rng = np.random.default_rng(0)
    score = np.round(rng.random(500), 2)  # ties included
    truth = (rng.random(500) < score).astype(float)
    assert _expected_auc(score, truth) == pytest.approx(roc_auc_score(truth, score))


def test_the_public_function_computes_outputs_with_a_model_like_the_columns_say() -> None:
    task = classification(5, 3, windows=3)
    rng = np.random.default_rng(5)
    train = rng.normal(size=(2000, 4))
    model = SklearnModel(LogisticRegression(max_iter=500).fit(train, (train[:, 0] > 0).astype(int) + (train[:, 1] > 0)))
    features = np.column_stack([task.reference[n] for n in FEATURES])
    proba = model.predict_proba(features)
    reference = dict(task.reference, p0=proba[:, 0], p1=proba[:, 1], p2=proba[:, 2])
    reference["prediction"] = model.predict(features)
    windows = []
    for window in task.windows:
        w_proba = model.predict_proba(np.column_stack([window[n] for n in FEATURES]))
        windows.append(dict(window, p0=w_proba[:, 0], p1=w_proba[:, 1], p2=w_proba[:, 2],
                            prediction=model.classes[w_proba.argmax(axis=1)]))
    by_model = estimate(reference, task.windows, target="y", model=model, features=FEATURES)
    by_columns = estimate(reference, windows, target="y", probabilities=["p0", "p1", "p2"], features=FEATURES,
                          classes=[0, 1, 2])
    for one, other in zip(by_model, by_columns):
        assert one.to_json() == other.to_json()
        assert one.get("accuracy").lower <= one.get("accuracy").value <= one.get("accuracy").upper


def test_inputs_it_cannot_use_are_refused_with_the_cause() -> None:
    task = classification(1, 2, windows=1)
    few = {name: values[:30] for name, values in task.reference.items()}
    with pytest.raises(EstimationError, match="30 rows with a known 'y'"):
        estimate(few, task.windows, target="y", probabilities=task.probabilities, features=FEATURES)
    broken = dict(task.windows[0], p1=np.where(np.arange(2000) < 3, np.nan, task.windows[0]["p1"]))
    with pytest.raises(EstimationError, match="3 row"):
        estimate(task.reference, [broken], target="y", probabilities=task.probabilities, features=FEATURES)
    with pytest.raises(EstimationError, match="unknown classification metric"):
        estimate(task.reference, [], target="y", probabilities=task.probabilities, metrics=["mape"])

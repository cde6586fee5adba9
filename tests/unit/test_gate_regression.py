"""The gate on regression tasks: squared (or absolute) error as its loss, scored on the target's hidden values."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import ttest_1samp
from sklearn.linear_model import LinearRegression

from monitor.adaptation import AdapterError, Decision, Domain, adapt
from monitor.adaptation.model import AdaptedModel, SklearnRegressor, load_sklearn, sklearn_model
from monitor.adaptation.tasks import REGRESSION_KINDS, ShiftedTask, make_regression_task
from plugins.adapters.feature_alignment import FeatureAlignment
from plugins.adapters.importance_weighting import ImportanceWeighting
from plugins.adapters.label_shift import LabelShift
from tests.adapt_support import context

SEEDS = range(10)
ROWS = 2000


def _mse(model, task: ShiftedTask) -> float:  # type: ignore[no-untyped-def]
    return float(np.mean((model.predict(task.target.features) - task.target_labels) ** 2))


def _run(task: ShiftedTask, seed: int, labelled_rows: int = 0, truth: np.ndarray | None = None,
         loss: str = "squared_error") -> tuple[SklearnRegressor, Decision]:
    champion = SklearnRegressor(LinearRegression().fit(task.source.features, task.source.labels))
    target = task.target
    if labelled_rows:
        values = task.target_labels if truth is None else truth
        target = Domain(target.features, target.feature_names, values, np.arange(target.rows) < labelled_rows)
    decision = adapt(champion, task.source, target, [ImportanceWeighting({}), FeatureAlignment({}), LabelShift({})],
                     seed=seed, regression_loss=loss)
    return champion, decision


@lru_cache(maxsize=None)
def outcome(kind: str, seed: int, labelled_rows: int) -> tuple[ShiftedTask, SklearnRegressor, Decision]:
    task = make_regression_task(kind, n_source=ROWS, n_target=ROWS, seed=seed)  # type: ignore[arg-type]
    return (task, *_run(task, seed, labelled_rows))


@pytest.mark.parametrize("labelled_rows", [0, 100])
@pytest.mark.parametrize("kind", REGRESSION_KINDS)
def test_the_gate_never_promotes_a_regressor_with_a_higher_target_mse(kind: str, labelled_rows: int) -> None:
    promoted = []
    for seed in SEEDS:
        task, champion, decision = outcome(kind, seed, labelled_rows)
        assert _mse(decision.model, task) <= _mse(champion, task) * 1.01, (seed, decision.reason)
        promoted.append(decision.winner)
        if decision.winner:
            assert decision.challenger(decision.winner).scores["loss"] == "squared_error"
            assert "estimated target -squared_error" in decision.reason
    if kind == "affine":  # the map is the remedy, every time
        assert promoted == ["feature_alignment"] * len(SEEDS)
    elif kind == "covariate":  # re-weighting the misspecified linear fit helps where the target moved; with 2,000
        # rows per domain the gain clears the noise of squared errors once in 10 seeds (6 in 10 with 4,000)
        assert set(promoted) <= {"importance_weighting", None} and promoted.count("importance_weighting") >= 1
    else:
        assert promoted == [None] * len(SEEDS)


def test_the_right_remedy_gains_a_lot() -> None:
    task, champion, decision = outcome("affine", 0, 0)
    assert _mse(decision.model, task) < 0.3 * _mse(champion, task)
    task, champion, decision = outcome("covariate", 7, 0)
    assert decision.winner == "importance_weighting" and _mse(decision.model, task) < 0.8 * _mse(champion, task)


def test_label_shift_refuses_a_regressor_with_the_reason() -> None:
    _, _, decision = outcome("none", 0, 0)
    refused = decision.challenger("label_shift")
    assert refused.result is None and "a regression model has no classes" in str(refused.error)
    task = make_regression_task("none", n_source=300, n_target=300, seed=0)
    champion = SklearnRegressor(LinearRegression().fit(task.source.features, task.source.labels))
    with pytest.raises(AdapterError, match="use importance_weighting or feature_alignment"):
        LabelShift({}).adapt(context(__import__("pathlib").Path("."), champion, task.source, task.target))


def test_labels_veto_a_map_where_the_old_relation_still_holds() -> None:
    """Targets that still follow the champion after the recalibration: label-free the map wins, 30 labels veto it
    by a one-sided paired t-test on the squared errors (the same p as scipy's)."""
    task = make_regression_task("affine", n_source=ROWS, n_target=ROWS, seed=1)
    champion = SklearnRegressor(LinearRegression().fit(task.source.features, task.source.labels))
    truth = champion.predict(task.target.features) + 0.3 * np.random.default_rng(5).standard_normal(task.target.rows)
    blind = _run(ShiftedTask(task.kind, task.source, task.target, truth, ""), 1)[1]
    assert blind.winner == "feature_alignment"
    _, informed = _run(task, 1, labelled_rows=100, truth=truth)
    scores = informed.challenger("feature_alignment").scores
    assert informed.winner is None and scores["label_check"] == "vetoed", informed.reason
    held = informed.split.target_val.with_labels()
    model = informed.challenger("feature_alignment").model
    difference = (champion.predict(held.features) - held.labels) ** 2 - (model.predict(held.features) - held.labels) ** 2
    assert scores["label_p_harm"] == pytest.approx(ttest_1samp(difference, 0.0, alternative="less").pvalue)


def test_absolute_error_is_the_loss_when_asked() -> None:
    task = make_regression_task("affine", n_source=ROWS, n_target=ROWS, seed=2)
    champion, decision = _run(task, 2, loss="absolute_error")
    scores = decision.challenger("feature_alignment").scores
    assert decision.winner == "feature_alignment" and scores["loss"] == "absolute_error"
    with pytest.raises(ValueError, match="regression_loss"):
        _run(task, 2, loss="huber")


def test_the_held_out_split_of_a_regression_task_is_a_plain_share() -> None:
    _, _, decision = outcome("covariate", 3, 100)
    assert decision.split.source_val.rows == pytest.approx(0.3 * ROWS, abs=1)
    assert decision.split.target_val.labelled_rows == 30


def test_sklearn_regressors_load_wrap_and_refuse_class_probabilities(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import pickle

    task = make_regression_task("none", n_source=200, n_target=10, seed=0)
    estimator = LinearRegression().fit(task.source.features, task.source.labels)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(estimator))
    os.chmod(path, 0o600)
    model = load_sklearn(path, {})
    assert isinstance(model, SklearnRegressor) and model.is_regressor and isinstance(sklearn_model(estimator),
                                                                                     SklearnRegressor)
    assert np.allclose(model.predict(task.source.features), estimator.predict(task.source.features))
    from monitor.adaptation import ModelLoadError

    with pytest.raises(ModelLoadError, match="regressor"):
        model.predict_proba(task.source.features)
    with pytest.raises(ModelLoadError, match="no classes"):
        AdaptedModel(model, prior_ratios=np.ones(2))


def test_the_daemon_reads_regression_labels_as_numbers() -> None:
    from monitor.daemon.adaptation_run import table_domain

    task = make_regression_task("none", n_source=50, n_target=10, seed=0)
    model = SklearnRegressor(LinearRegression().fit(task.source.features, task.source.labels))
    columns = {f"x{i}": task.source.features[:4, i] for i in range(6)}
    columns["y"] = pa.array(["1.5", None, "oops", "2"])
    domain = table_domain(pa.table(columns), [f"x{i}" for i in range(6)], "y", model, "rows")
    assert domain.labelled.tolist() == [True, False, False, True]
    assert domain.labels[[0, 3]].tolist() == [1.5, 2.0]

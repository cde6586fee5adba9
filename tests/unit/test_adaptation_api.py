"""``monitor.adaptation.adapt``: the gate's decision from Python, through the daemon's split, contexts and gate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from monitor.adaptation import Adapter, AdapterError, Domain, SklearnModel, adapt
from monitor.adaptation.contract import AdaptationContext, AdaptationResult
from monitor.adaptation.tasks import make_task
from plugins.adapters.feature_alignment import FeatureAlignment
from plugins.adapters.importance_weighting import ImportanceWeighting
from plugins.adapters.label_shift import LabelShift
from tests.unit.test_gate_scenarios import run


def _champion(task):  # type: ignore[no-untyped-def]
    return SklearnModel(LogisticRegression(max_iter=1000).fit(task.source.features, task.source.labels))


def test_adapt_returns_every_challenger_with_its_scores_and_the_winner() -> None:
    task = make_task("affine", 2, n_source=2000, n_target=2000, seed=0)
    champion = _champion(task)
    decision = adapt(champion, task.source, task.target, [ImportanceWeighting({}), FeatureAlignment({}),
                                                           LabelShift({})], seed=0)
    assert [c.name for c in decision.challengers] == ["importance_weighting", "feature_alignment", "label_shift"]
    assert decision.winner == "feature_alignment" and decision.model is decision.challenger("feature_alignment").model
    for challenger in decision.challengers:
        assert {"estimate", "champion_estimate", "gain", "noise", "validator"} <= set(challenger.scores)
        assert challenger.reason.startswith(("passed", "rejected"))
    truth = task.target_labels
    assert np.mean(decision.model.predict(task.target.features) == truth) > \
        np.mean(champion.predict(task.target.features) == truth) + 0.1
    assert "feature_alignment promoted" in decision.reason


@pytest.mark.parametrize(("kind", "labelled_rows"), [("label", 0), ("affine", 100), ("subspace_flip", 100)])
def test_adapt_decides_as_the_gate_scenarios_do(kind: str, labelled_rows: int) -> None:
    """Same split, same contexts, same gate: the same verdicts as the hand-built run of the scenario tests."""
    task = make_task(kind, 3, n_source=1500, n_target=1500, seed=4)
    expected = run(task, seed=4, labelled_rows=labelled_rows)
    target = task.target
    if labelled_rows:
        target = Domain(target.features, target.feature_names, task.target_labels,
                        np.arange(target.rows) < labelled_rows)
    decision = adapt(expected.champion, task.source, target,
                     [ImportanceWeighting({}), FeatureAlignment({}), LabelShift({})], seed=4)
    assert decision.winner == expected.chosen
    assert decision.reason == expected.decision.reason
    for challenger, verdict in zip(decision.challengers, expected.decision.verdicts):
        assert challenger.scores == pytest.approx(verdict.scores) and challenger.passed == verdict.passed


class Refuses(Adapter):
    """Says the input does not suit it."""

    type_name = "refuses"

    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        raise AdapterError("needs something else")


def test_a_failing_adapter_is_recorded_and_nothing_to_judge_keeps_the_champion() -> None:
    task = make_task("none", 2, n_source=600, n_target=600, seed=0)
    champion = _champion(task)
    decision = adapt(champion, task.source, task.target, [Refuses({})])
    assert decision.winner is None and decision.model is champion
    assert decision.challengers[0].error == "needs something else"
    assert decision.challengers[0].reason == "failed: needs something else" and not decision.challengers[0].passed
    assert "no challenger" in decision.reason


def test_bad_input_is_refused_with_the_cause() -> None:
    task = make_task("none", 2, n_source=600, n_target=600, seed=0)
    champion = _champion(task)
    with pytest.raises(ValueError, match="source domain needs labels"):
        adapt(champion, task.target, task.target, [LabelShift({})])
    with pytest.raises(ValueError, match="unique"):
        adapt(champion, task.source, task.target, [LabelShift({}), LabelShift({})])
    renamed = adapt(champion, task.source, task.target, [LabelShift({}), ("prior_bbse", LabelShift({"method": "bbse"}))])
    assert [c.name for c in renamed.challengers] == ["label_shift", "prior_bbse"]

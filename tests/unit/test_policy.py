"""The decision policy: drifted share → window state → drift events."""

from __future__ import annotations

import pytest

from monitor.config import DriftConfig
from monitor.policy import DriftPolicy

FEATURES = ["a", "b", "c", "d"]


def verdicts(*drifted: str) -> dict[str, bool]:
    return {name: name in drifted for name in FEATURES}


DRIFTED = verdicts("a", "b")  # share 0.5
CALM = verdicts("a")  # share 0.25


def test_share_is_over_the_measured_features_only() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5))
    decision = policy.decide({"a": True, "b": False})  # c, d were not measured
    assert decision.drift_share == 0.5
    assert decision.drifted_features == ["a"]
    assert decision.state == "drift"


def test_share_below_threshold_is_ok() -> None:
    decision = DriftPolicy(DriftConfig(share=0.3)).decide(CALM)
    assert (decision.state, decision.drift_share, decision.starts_event) == ("ok", 0.25, False)


def test_share_equal_to_threshold_counts_as_drift() -> None:
    assert DriftPolicy(DriftConfig(share=0.25)).decide(CALM).state == "drift"


def test_consecutive_one_drifts_at_once_and_raises_one_event() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5, consecutive=1))
    states = [policy.decide(v) for v in (DRIFTED, DRIFTED, DRIFTED)]
    assert [d.state for d in states] == ["drift"] * 3
    assert [d.starts_event for d in states] == [True, False, False]


def test_consecutive_three_warns_before_drift() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5, consecutive=3))
    decisions = [policy.decide(v) for v in (DRIFTED, DRIFTED, DRIFTED, DRIFTED)]
    assert [d.state for d in decisions] == ["warning", "warning", "drift", "drift"]
    assert [d.starts_event for d in decisions] == [False, False, True, False]


def test_a_calm_window_resets_the_streak() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5, consecutive=3))
    states = [policy.decide(v).state for v in (DRIFTED, DRIFTED, CALM, DRIFTED, DRIFTED)]
    assert states == ["warning", "warning", "ok", "warning", "warning"]


def test_leaving_and_reentering_drift_raises_a_new_event() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5, consecutive=2))
    sequence = (DRIFTED, DRIFTED, DRIFTED, CALM, DRIFTED, DRIFTED)
    decisions = [policy.decide(v) for v in sequence]
    assert [d.state for d in decisions] == ["warning", "drift", "drift", "ok", "warning", "drift"]
    assert [i for i, d in enumerate(decisions) if d.starts_event] == [1, 5]


@pytest.mark.parametrize("consecutive", [1, 3])
def test_window_without_verdicts_keeps_the_state(consecutive: int) -> None:
    policy = DriftPolicy(DriftConfig(share=0.5, consecutive=consecutive))
    for _ in range(consecutive):
        policy.decide(DRIFTED)
    before = (policy.state, policy.streak, policy.in_drift)
    decision = policy.decide({})
    assert decision.state == "drift" and not decision.starts_event
    assert decision.drift_share == 0.0 and decision.drifted_features == []
    assert (policy.state, policy.streak, policy.in_drift) == before


def test_window_without_verdicts_does_not_break_a_warning_streak() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5, consecutive=2))
    assert policy.decide(DRIFTED).state == "warning"
    assert policy.decide({}).state == "warning"
    decision = policy.decide(DRIFTED)
    assert decision.state == "drift" and decision.starts_event


def test_restore_from_nothing_is_ok() -> None:
    policy = DriftPolicy.restore(DriftConfig(share=0.5, consecutive=3), [])
    assert (policy.state, policy.streak, policy.in_drift) == ("ok", 0, False)


def test_restore_counts_the_newest_streak() -> None:
    config = DriftConfig(share=0.5, consecutive=3)
    # newest first: two drifted windows, then a calm one, then an older drifted one
    policy = DriftPolicy.restore(config, [("warning", 0.75), ("warning", 0.5), ("ok", 0.25), ("warning", 0.5)])
    assert (policy.state, policy.streak) == ("warning", 2)
    decision = policy.decide(DRIFTED)
    assert decision.state == "drift" and decision.starts_event


def test_restore_in_drift_does_not_repeat_the_event() -> None:
    config = DriftConfig(share=0.5, consecutive=2)
    policy = DriftPolicy.restore(config, [("drift", 0.5), ("drift", 1.0)])
    assert policy.state == "drift"
    assert not policy.decide(DRIFTED).starts_event
    assert policy.decide(CALM).state == "ok"


def test_restore_after_drift_ended_starts_clean() -> None:
    policy = DriftPolicy.restore(DriftConfig(share=0.5, consecutive=2), [("ok", 0.0), ("drift", 1.0), ("drift", 1.0)])
    assert (policy.state, policy.streak) == ("ok", 0)
    assert policy.decide(DRIFTED).state == "warning"


def test_restored_policy_continues_like_an_uninterrupted_one() -> None:
    config = DriftConfig(share=0.5, consecutive=3)
    sequence = [DRIFTED, CALM, DRIFTED, {}, DRIFTED, DRIFTED, DRIFTED, {}, CALM, DRIFTED, {}, DRIFTED]
    live = DriftPolicy(config)
    history: list[tuple[str, float]] = []
    for index, window in enumerate(sequence):
        restored = DriftPolicy.restore(config, list(reversed(history)))
        expected = live.decide(window)
        got = restored.decide(window)
        assert (got.state, got.starts_event) == (expected.state, expected.starts_event), index
        history.append((expected.state, expected.drift_share))

"""The decision policy: drifted share → window state → drift events."""

from __future__ import annotations

import numpy as np
import pytest

from monitor.config import DriftConfig
from monitor.domain.policy import DriftPolicy, max_divergence
from monitor.domain.records import ResultRecord

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


# ---- the sequential detector ------------------------------------------------------------

MANY = [f"f{i}" for i in range(100)]


def share_of(share: float) -> dict[str, bool]:
    drifted = round(share * len(MANY))
    return {name: index < drifted for index, name in enumerate(MANY)}


def creep(baseline: int = 20, steps: int = 40) -> list[float]:
    """A quiet drifted share of 0.05, then +0.01 per window."""
    return [0.05] * baseline + [0.05 + 0.01 * step for step in range(1, steps + 1)]


def first_drift(policy: DriftPolicy, shares: list[float]) -> int | None:
    return next((i for i, share in enumerate(shares) if policy.decide(share_of(share)).state == "drift"), None)


SEQUENTIAL = DriftConfig(share=0.3, sequential={})


def test_sequential_defaults_and_extra_keys_are_refused() -> None:
    config = DriftConfig.model_validate({"sequential": {}})
    assert config.sequential is not None and config.sequential.statistic == "drift_share"
    with pytest.raises(ValueError, match="extra"):
        DriftConfig.model_validate({"sequential": {"lambda": 3}})
    with pytest.raises(ValueError, match="statistic"):
        DriftConfig.model_validate({"sequential": {"statistic": "mean"}})


def test_a_slow_creep_is_caught_by_the_detector_before_the_share_rule() -> None:
    shares = creep()
    share_rule = first_drift(DriftPolicy(DriftConfig(share=0.3)), shares)
    detector = first_drift(DriftPolicy(SEQUENTIAL), shares)
    assert share_rule is not None and shares[share_rule] >= 0.3
    assert detector is not None and detector < share_rule and shares[detector] < 0.25


def test_the_alarm_window_is_drift_with_one_event() -> None:
    policy = DriftPolicy(SEQUENTIAL)
    decisions = [policy.decide(share_of(share)) for share in creep(steps=20)]
    fired = [i for i, d in enumerate(decisions) if d.detector_fired]
    assert len(fired) == 1
    assert [i for i, d in enumerate(decisions) if d.starts_event] == fired
    assert decisions[fired[0]].state == "drift"


def test_a_single_noisy_window_does_not_page() -> None:
    policy = DriftPolicy(DriftConfig(share=0.3, consecutive=2, sequential={}))
    decisions = [policy.decide(share_of(share)) for share in [0.05] * 30 + [1.0] + [0.05] * 30]
    assert not any(d.detector_fired or d.starts_event for d in decisions)
    assert decisions[30].state == "warning"


def test_without_sequential_the_statistic_is_ignored() -> None:
    policy = DriftPolicy(DriftConfig(share=0.5))
    assert policy.detector is None
    assert [policy.decide(CALM, statistic=10.0 * i).state for i in range(30)] == ["ok"] * 30


def test_max_divergence_feeds_the_given_statistic_only() -> None:
    config = DriftConfig(share=0.9, sequential={"statistic": "max_divergence", "delta": 0.01, "threshold": 0.5})
    policy = DriftPolicy(config)
    assert not any(policy.decide(CALM).detector_fired for _ in range(30))  # no statistic: nothing fed
    assert policy.detector is not None and policy.detector.n == 0
    values = [0.05] * 20 + [0.3] * 5
    assert [policy.decide(CALM, statistic=v).detector_fired for v in values].count(True) == 1


def test_max_divergence_is_the_largest_distance_result() -> None:
    def result(measure: str, value: float) -> ResultRecord:
        return ResultRecord("a", measure, value, None, None, 0.1, False)

    results = [result("psi", 0.2), result("ks", 0.9), result("wasserstein", 0.4)]
    assert max_divergence(results, {"psi", "wasserstein"}) == 0.4
    assert max_divergence(results, set()) is None


def test_windows_without_verdicts_do_not_feed_the_detector() -> None:
    policy = DriftPolicy(SEQUENTIAL)
    policy.decide(share_of(0.05))
    assert policy.detector is not None
    before = dict(policy.detector.state)
    policy.decide({})
    assert policy.detector.state == before


# (state, share) pairs cannot tell a window without verdicts from a share of 0 while "ok": the
# statistic (None when the detector was not fed) makes the replay exact there too
@pytest.mark.parametrize("with_statistic", [False, True])
def test_sequential_restore_replays_like_an_uninterrupted_run(with_statistic: bool) -> None:
    config = DriftConfig(share=0.3, consecutive=2, sequential={"min_windows": 5})
    rng = np.random.default_rng(7)
    shares = [max(0.0, round(s, 2)) for s in creep(baseline=15, steps=45) + list(rng.uniform(0, 0.2, 20))]
    windows: list[dict[str, bool]] = [share_of(s) for s in shares]
    if with_statistic:
        windows[10:10] = [{}]  # a window with no verdicts while "ok"
    windows[45:45] = [{}]  # one while in drift
    live = DriftPolicy(config)
    history: list[tuple] = []
    alarms = 0
    for index, window in enumerate(windows):
        restored = DriftPolicy.restore(config, list(reversed(history)))
        expected, got = live.decide(window), restored.decide(window)
        assert (got.state, got.starts_event, got.detector_fired) == (
            expected.state, expected.starts_event, expected.detector_fired), index
        assert restored.detector.state == pytest.approx(live.detector.state), index
        alarms += expected.detector_fired
        statistic = expected.drift_share if window else None
        history.append((expected.state, expected.drift_share, statistic) if with_statistic
                       else (expected.state, expected.drift_share))
    assert alarms >= 2

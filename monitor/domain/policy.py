"""The decision policy: per-feature verdicts → window state → monitor drift state."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Collection, Iterable, Literal, Mapping, Sequence

from monitor.config import DriftConfig, SequentialConfig
from monitor.domain.records import ALL_FEATURES, ResultRecord
from monitor.domain.sequential import PageHinkley

State = Literal["ok", "warning", "drift"]
STATE_CODES: dict[str, int] = {"ok": 0, "warning": 1, "drift": 2}

#: A past window for ``DriftPolicy.restore``: (state, drift share), optionally followed by the
#: statistic fed to the detector and whether a multivariate test flagged the window.
PastWindow = tuple[str, float] | tuple[str, float, float | None] | tuple[str, float, float | None, bool]


@dataclass(frozen=True)
class Decision:
    """What one window means for its monitor."""

    state: State
    drift_share: float
    drifted_features: list[str]
    starts_event: bool
    detector_fired: bool = False


def sequential_detector(config: SequentialConfig) -> PageHinkley:
    """A fresh Page–Hinkley detector with the configured parameters."""
    return PageHinkley(delta=config.delta, threshold=config.threshold, min_instances=config.min_windows)


def max_divergence(results: Iterable[ResultRecord], distance_measures: Collection[str]) -> float | None:
    """The largest finite value among a window's results of the given distance measures; None if none.

    Pass the non-test measures whose larger values mean more drift. An infinite value flags its
    feature; it is left out here, as one infinity would stall the sequential detector's mean.
    """
    values = [result.value for result in results
              if result.measure in distance_measures and math.isfinite(result.value)]
    return max(values) if values else None


class DriftPolicy:
    """Drift when the drifted share reaches ``share`` for ``consecutive`` windows in a row,
    or, with ``sequential`` configured, when its detector sees the window statistic creep up.

    A detector alarm makes that one window a drift window (a new event when the monitor was not
    in drift); the detector then restarts from the current level, so a creep that goes on
    raises another alarm only once it has built up the same evidence again.
    """

    def __init__(self, config: DriftConfig, streak: int = 0, in_drift: bool = False,
                 detector: PageHinkley | None = None) -> None:
        self.config = config
        self.streak = streak
        self.in_drift = in_drift
        if detector is None and config.sequential is not None:
            detector = sequential_detector(config.sequential)
        self.detector = detector

    def decide(self, feature_drifted: Mapping[str, bool], statistic: float | None = None,
               multivariate_drift: bool = False) -> Decision:
        """Feed one window's per-feature verdicts; returns the window's state.

        ``statistic`` is the value the sequential detector watches; when it is None and the
        configured statistic is ``drift_share``, the window's drift share is used. A window that
        a multivariate test flagged counts as reaching the share (its drifted features then end
        with ``*``). A window with no verdicts at all leaves the state and the detector as they were.
        """
        drifted = [name for name, flag in feature_drifted.items() if flag]
        share = len(drifted) / len(feature_drifted) if feature_drifted else 0.0
        was_in_drift = self.in_drift
        fired = False
        if feature_drifted or multivariate_drift:
            over_level = multivariate_drift or share >= self.config.share
            self.streak = self.streak + 1 if over_level else 0
            if feature_drifted:
                fired = self._feed(share if statistic is None else statistic, share_given=statistic is None)
            self.in_drift = self.streak >= self.config.consecutive or fired
        if multivariate_drift:
            drifted.append(ALL_FEATURES)
        return Decision(self.state, share, drifted, starts_event=self.in_drift and not was_in_drift,
                        detector_fired=fired)

    def _feed(self, value: float, share_given: bool) -> bool:
        sequential = self.config.sequential
        if self.detector is None or sequential is None:
            return False
        if share_given and sequential.statistic != "drift_share":
            return False  # no max_divergence for this window (no distance measure scored)
        return self.detector.update(value)

    @property
    def state(self) -> State:
        """The monitor's current state."""
        return "drift" if self.in_drift else ("warning" if self.streak else "ok")

    @classmethod
    def restore(cls, config: DriftConfig, recent: Sequence[PastWindow]) -> DriftPolicy:
        """Rebuild the policy from the latest windows, newest first.

        Each window is ``(state, drift_share)`` or ``(state, drift_share, statistic)``, where
        ``statistic`` is what the sequential detector was fed (None: it was not fed). The streak
        and the drift state come from the newest windows; the detector is rebuilt by replaying
        the windows' statistics oldest first, so it equals an uninterrupted run when they reach
        back to the monitor's first window or to the detector's last alarm. Without a third
        element a ``drift_share`` detector replays the drift shares, skipping windows without
        verdicts, and a ``max_divergence`` one skips the window.
        """
        streak = 0
        for state, share, *rest in recent:
            multivariate_drift = len(rest) > 1 and bool(rest[1])
            if _without_verdicts(state, share) and not multivariate_drift:
                continue  # it kept the state and does not break the streak
            if share < config.share and not multivariate_drift:
                break
            streak += 1
        in_drift = bool(recent) and recent[0][0] == "drift"
        policy = cls(config, streak=streak, in_drift=in_drift)
        if policy.detector is not None and config.sequential is not None:
            for window in reversed(recent):
                value = _replayed_statistic(window, config.sequential)
                if value is not None:
                    policy.detector.update(value)
        return policy


def _without_verdicts(state: str, share: float) -> bool:
    # with verdicts, a zero share always means "ok": neither rule can fire on it
    return share == 0.0 and state != "ok"


def _replayed_statistic(window: PastWindow, config: SequentialConfig) -> float | None:
    if len(window) > 2:
        return window[2]
    state, share = window[0], window[1]
    if config.statistic == "drift_share" and not _without_verdicts(state, share):
        return share
    return None

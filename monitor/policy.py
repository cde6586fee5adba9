"""The decision policy: per-feature verdicts → window state → monitor drift state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from monitor.config import DriftConfig

State = Literal["ok", "warning", "drift"]
STATE_CODES: dict[str, int] = {"ok": 0, "warning": 1, "drift": 2}


@dataclass(frozen=True)
class Decision:
    """What one window means for its monitor."""

    state: State
    drift_share: float
    drifted_features: list[str]
    starts_event: bool


class DriftPolicy:
    """Dataset drift when the drifted share reaches ``share`` for ``consecutive`` windows in a row."""

    def __init__(self, config: DriftConfig, streak: int = 0, in_drift: bool = False) -> None:
        self.config = config
        self.streak = streak
        self.in_drift = in_drift

    def decide(self, feature_drifted: Mapping[str, bool]) -> Decision:
        """Feed one window's per-feature verdicts; returns the window's state.

        A window with no verdicts (no feature could be measured) leaves the state as it was.
        """
        drifted = [name for name, flag in feature_drifted.items() if flag]
        share = len(drifted) / len(feature_drifted) if feature_drifted else 0.0
        was_in_drift = self.in_drift
        if feature_drifted:
            self.streak = self.streak + 1 if share >= self.config.share else 0
            self.in_drift = self.streak >= self.config.consecutive
        return Decision(self.state, share, drifted, starts_event=self.in_drift and not was_in_drift)

    @property
    def state(self) -> State:
        """The monitor's current state."""
        return "drift" if self.in_drift else ("warning" if self.streak else "ok")

    @classmethod
    def restore(cls, config: DriftConfig, recent: list[tuple[str, float]]) -> DriftPolicy:
        """Rebuild the policy from the latest windows' (state, drift share), newest first."""
        streak = 0
        for state, share in recent:
            if share == 0.0 and state != "ok":
                continue  # a window with no verdicts: it kept the state and does not break the streak
            if share < config.share:
                break
            streak += 1
        in_drift = bool(recent) and recent[0][0] == "drift"
        return cls(config, streak=streak, in_drift=in_drift)

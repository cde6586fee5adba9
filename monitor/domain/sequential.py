"""Sequential change detection over a monitor's series of window statistics."""

from __future__ import annotations

from typing import Any, Mapping


class PageHinkley:
    r"""The Page–Hinkley test for an increase in the mean of a series (Page 1954; Mouss et al. 2004).

    Each ``update(x_T)`` computes, with ``T`` the values seen since the last restart::

        x̄_T = x̄_{T-1} + (x_T - x̄_{T-1}) / T              running mean
        m_T = alpha * m_{T-1} + (x_T - x̄_T - delta)        cumulative deviation, m_0 = 0
        M_T = min(M_{T-1}, m_T)                             its minimum, M_0 = 0
        PH_T = m_T - M_T                                     alarm when PH_T > threshold and T >= min_instances

    ``delta`` is the rise of the mean that is tolerated (a sustained increase smaller than it
    never fires); ``threshold`` (Page's lambda) is how much evidence an alarm needs: a step of
    size ``s > delta`` fires after about ``threshold / (s - delta)`` values, and one value can
    add at most its own jump, so a single spike smaller than ``threshold`` never fires from a
    quiet start. ``alpha < 1`` makes old deviations fade. After an alarm the detector restarts.
    """

    def __init__(self, delta: float = 0.005, threshold: float = 50.0, min_instances: int = 30,
                 alpha: float = 1.0) -> None:
        if delta < 0 or threshold <= 0 or min_instances < 1 or not 0 < alpha <= 1:
            raise ValueError("need delta >= 0, threshold > 0, min_instances >= 1 and 0 < alpha <= 1")
        self.delta = delta
        self.threshold = threshold
        self.min_instances = min_instances
        self.alpha = alpha
        self.reset()

    def reset(self) -> None:
        """Forget everything seen: the next value starts a new series."""
        self.n = 0
        self.mean = 0.0
        self.cumulative = 0.0
        self.minimum = 0.0

    def update(self, x: float) -> bool:
        """Feed one value; True when it completes evidence of an increase (the detector then restarts)."""
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.cumulative = self.alpha * self.cumulative + (x - self.mean - self.delta)
        self.minimum = min(self.minimum, self.cumulative)
        if self.n >= self.min_instances and self.statistic > self.threshold:
            self.reset()
            return True
        return False

    @property
    def statistic(self) -> float:
        """The current Page–Hinkley statistic ``m_T - M_T`` (0 right after a restart)."""
        return self.cumulative - self.minimum

    @property
    def state(self) -> dict[str, float]:
        """What the detector has learned, as JSON-friendly numbers (the parameters are not included)."""
        return {"n": self.n, "mean": self.mean, "cumulative": self.cumulative, "minimum": self.minimum}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], **parameters: Any) -> PageHinkley:
        """A detector with these parameters that continues from ``state`` as written by ``state``."""
        detector = cls(**parameters)
        detector.n = int(state["n"])
        detector.mean = float(state["mean"])
        detector.cumulative = float(state["cumulative"])
        detector.minimum = float(state["minimum"])
        return detector

"""How many decoded reference summaries stay in memory between ticks: a budget of bytes for all monitors."""

from __future__ import annotations

import threading

from monitor.divergence import MultivariateMeasure, ReferenceSummary
from monitor.domain.evaluate import MeasureSetting
from monitor.domain.pushdown import CountReference


class SummaryBudget:
    """Bytes of decoded reference summaries the monitors may keep between ticks (``storage.reference_cache_mib``).

    A monitor keeps its summary when it fits in what is left of the budget; one that does not fit
    decodes it from storage at each tick and drops it after the tick. A summary that got in stays
    until its monitor's reference changes or the monitor stops (no eviction): monitors tick in turn,
    so evicting the least recently used would evict every summary before its next use.
    ``None``: no limit (a runner on its own: the CLI, tests).
    """

    def __init__(self, budget_bytes: int | None) -> None:
        self.budget = budget_bytes
        self._held: dict[str, int] = {}
        self._used = 0
        self._lock = threading.Lock()

    def keep(self, monitor: str, nbytes: int) -> bool:
        """Whether ``monitor`` may keep a summary of ``nbytes`` (it replaces the one it held)."""
        with self._lock:
            self._used -= self._held.pop(monitor, 0)
            if self.budget is not None and self._used + nbytes > self.budget:
                return False
            self._held[monitor] = nbytes
            self._used += nbytes
            return True

    def release(self, monitor: str) -> None:
        """``monitor`` holds no summary any more."""
        with self._lock:
            self._used -= self._held.pop(monitor, 0)

    @property
    def used(self) -> int:
        """Bytes held now."""
        return self._used

    @property
    def held(self) -> int:
        """Monitors holding their summary now."""
        return len(self._held)


class HoldsSummary:
    """A monitor runner's decoded reference summary, kept between ticks only within the budget."""

    name: str
    measures: list[MeasureSetting]
    summary: ReferenceSummary | None = None
    _counted: CountReference | None = None
    _summaries: SummaryBudget
    _kept = False

    def _decoded(self, data: bytes) -> ReferenceSummary:
        """A stored summary, without its multivariate sample when no measure of this monitor uses it."""
        # the sample is 2,000 rows × features of float64 per monitor: not even decoded when unused
        return ReferenceSummary.from_bytes(data, multivariate=any(isinstance(setting.measure, MultivariateMeasure)
                                                                  for setting in self.measures))

    def _hold(self, summary: ReferenceSummary | None) -> None:
        """Use ``summary`` from now on; it stays after the tick only if it fits in the summaries' budget."""
        self.summary, self._counted = summary, None
        if summary is None:
            self._summaries.release(self.name)
            self._kept = False
        else:
            self._kept = self._summaries.keep(self.name, summary.nbytes)

    def _drop_unkept(self) -> None:
        """After a tick: a summary that did not fit in the budget is dropped (decoded again at the next tick)."""
        if not self._kept:
            self.summary = self._counted = None

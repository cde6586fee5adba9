"""``driftd adaptations run --force``: the tick that holds the monitor turns an operator's request into runs."""

from __future__ import annotations

import logging
from typing import Callable

from monitor.config import MonitorConfig
from monitor.daemon.windowing import RecentRows
from monitor.store.ticks import ForcedAdaptation

log = logging.getLogger("driftd.engine")


class ForcedRuns:
    """Hands each tick what it needs to honour a request, and starts the runs once the tick committed them."""

    def __init__(self, name: str, config: MonitorConfig, on_adaptation: Callable[[str], None] | None) -> None:
        self.name = name
        self.adapters = tuple((a.label, a.type) for a in config.adaptation.adapters) if config.adaptation else ()
        self.on_adaptation = on_adaptation
        self._waiting = False

    def for_tick(self, recent: RecentRows) -> ForcedAdaptation | None:
        """The adapters and the recent rows (serialised only when the transaction finds a request)."""
        return ForcedAdaptation(self.adapters, recent.serialised) if self.adapters else None

    def committed(self, forced: ForcedAdaptation | None) -> None:
        """After the commit: start the forced event's runs, or say once why a request waits."""
        if forced is None:
            return
        if forced.event_id is not None:
            log.info("monitor %s: adapters requested by an operator queued on the latest rows (forced event %d)",
                     self.name, forced.event_id)
            if self.on_adaptation is not None:
                self.on_adaptation(self.name)
        elif forced.waiting and not self._waiting:
            log.warning("monitor %s: an operator asked to adapt on the latest rows; this process has evaluated no "
                        "window since it took the monitor, so the request waits for the next window", self.name)
        self._waiting = forced.waiting

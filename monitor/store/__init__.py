"""driftd's SQL history: the tick's unit of work, reference versions, leases and the read queries.

Each concern is a small class over one shared ``Database`` (engine and sessions); ``Store``
puts them together. The store imports the domain's records, never the reverse.
"""

from __future__ import annotations

from monitor.domain.records import (
    ALL_FEATURES,
    NewReference,
    ResultRecord,
    WindowRecord,
)
from monitor.store.database import Database, StoreError, create_db_engine
from monitor.store.leases import LeaseLost, Leases, LeaseTaken
from monitor.store.queries import (
    AdaptationRow,
    EventRow,
    HistoryQueries,
    Overview,
    Page,
    SeriesPoint,
    WindowRow,
    adaptation_row,
)
from monitor.store.outbox import Backlog, Outbox, OutboxItem
from monitor.store.references import References, StoredReference
from monitor.store.performance import LabelStore, LabelUpdate, LatestRealized, OpenWindow
from monitor.store.ticks import UNCHANGED, CommittedWindow, Progress, TickWriter


class Store(TickWriter, References, Leases, HistoryQueries, Outbox, LabelStore):
    """All reads and writes of driftd's SQL history."""


__all__ = [
    "ALL_FEATURES", "AdaptationRow", "Backlog", "CommittedWindow", "Database", "EventRow", "LabelUpdate",
    "LatestRealized", "LeaseLost", "LeaseTaken", "NewReference", "OpenWindow", "OutboxItem", "Overview", "Page",
    "Progress", "ResultRecord",
    "SeriesPoint", "Store",
    "StoreError", "StoredReference", "UNCHANGED",
    "WindowRecord", "WindowRow", "adaptation_row", "create_db_engine",
]

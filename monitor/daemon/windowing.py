"""Rows between ticks: those waiting for a complete window, and the recent ones an adaptation works on."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pyarrow as pa

from monitor.config import MonitorConfig
from monitor.connector import concat_tables
from monitor.daemon.errors import MonitorError
from monitor.daemon.performance import performance_columns
from monitor.domain.reference import feature_kinds, table_from_bytes, table_to_bytes
from monitor.domain.values import InvalidValues, normalise_features, take_marks
from monitor.domain.windows import WindowSlice, split_by_rows, split_by_span


class PendingRows:
    """The rows read but not yet in a complete window, and the end of the last window (time windows).

    Every feature column is normalised as it arrives (``monitor.domain.values``): numbers as float64,
    categories as text, so a column that changes type mid-stream never stops the monitor; the values
    that were not numbers are gathered in ``invalid`` until the tick's commit reports them, and each
    stays beside its row (a hidden column) until its window is cut, which then knows its own.
    """

    def __init__(self, config: MonitorConfig, pending: bytes | None = None,
                 last_window_end: datetime | None = None) -> None:
        self.config = config
        self.name = config.name
        self.kinds = feature_kinds(config.features)
        # rows stored by an earlier version may hold their source's types: normalised (counted before)
        self.table: pa.Table | None = (normalise_features(table_from_bytes(pending), self.kinds)[0]
                                       if pending else None)
        self.invalid: dict[str, InvalidValues] = {}
        self.watermark = last_window_end.timestamp() if last_window_end else None
        window, model = config.window, config.model
        self.columns = [*config.features.numeric, *config.features.categorical,
                        *([window.timestamp] if window.timestamp else []),
                        *([model.label] if model and model.label else []), *performance_columns(config)]
        self.columns += [name for name in config.features.segment_by if name not in self.columns]
        self.columns = list(dict.fromkeys(self.columns))

    @property
    def num_rows(self) -> int:
        """How many rows wait."""
        return self.table.num_rows if self.table is not None else 0

    def combine(self, table: pa.Table) -> pa.Table:
        """The waiting rows followed by the configured columns of ``table``."""
        present = [name for name in self.columns if name in table.column_names]
        if table.num_rows and not present:
            raise MonitorError(f"monitor {self.name!r}: none of the configured columns {self.columns} are in the "
                               f"source (it has {table.column_names})")
        table, invalid = normalise_features(table.select(present), self.kinds, marks=True)
        for feature, values in invalid.items():
            self.invalid[feature] = self.invalid[feature].plus(values) if feature in self.invalid else values
        if self.table is None or self.table.num_rows == 0:
            return table
        if table.num_rows == 0:
            return self.table
        return concat_tables([self.table, table])  # a timestamp or label column that changed type: text

    def take_invalid(self) -> dict[str, InvalidValues]:
        """The invalid values gathered since the last call (after a commit: to report them once)."""
        invalid, self.invalid = self.invalid, {}
        return invalid

    def split(self, rows: pa.Table) -> tuple[list[WindowSlice], pa.Table]:
        """The complete windows in ``rows`` and the rows left over."""
        window = self.config.window
        if window.rows is not None:
            windows, remainder = split_by_rows(rows, window.rows, window.timestamp)
        else:
            assert window.span is not None and window.timestamp is not None
            if rows.num_rows and window.timestamp not in rows.column_names:
                raise MonitorError(f"monitor {self.name!r}: timestamp column {window.timestamp!r} is missing")
            windows, remainder = split_by_span(rows, window.timestamp, window.span, self.watermark)
        return [_marked(window) for window in windows], remainder

    def committed(self, remainder: pa.Table | None, last_window_end: datetime | None = None) -> None:
        """After the commit: ``remainder`` waits now, and time windows resume after ``last_window_end``.

        A remainder that is a small slice of the fetched batch is copied, so the batch's buffers are freed.
        """
        if remainder is not None and remainder.get_total_buffer_size() > 2 * remainder.nbytes + 65536:
            remainder = remainder.take(pa.array(range(remainder.num_rows), type=pa.int64()))
        self.table = remainder
        if last_window_end is not None:
            self.watermark = last_window_end.timestamp()


def _marked(window: WindowSlice) -> WindowSlice:
    """The window without the hidden columns of invalid values, knowing them per feature instead."""
    rows, invalid = take_marks(window.rows)
    return replace(window, rows=rows, invalid=invalid)


def serialised(table: pa.Table | None) -> bytes | None:
    """Arrow IPC of waiting rows for SQL; None when there are none."""
    return table_to_bytes(table) if table is not None and table.num_rows else None


class RecentRows:
    """The last ``limit`` rows of evaluated windows: the target domain an adaptation works on."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tables: list[pa.Table] = []
        self._rows = 0

    def add(self, table: pa.Table) -> None:
        """Keep a window's rows, dropping the oldest beyond the limit."""
        if self.limit <= 0 or table.num_rows == 0:
            return
        self._tables.append(table)
        self._rows += table.num_rows
        while self._rows - self._tables[0].num_rows >= self.limit:
            self._rows -= self._tables.pop(0).num_rows

    def serialised(self) -> bytes | None:
        """The kept rows (at most ``limit``, the newest) as Arrow IPC."""
        if not self._tables:
            return None
        table = concat_tables(self._tables)
        return table_to_bytes(table.slice(max(0, table.num_rows - self.limit)))

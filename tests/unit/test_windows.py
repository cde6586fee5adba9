"""Tumbling windows by row count and by time span, including late and unsorted rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.domain.windows import WindowError, WindowSlice, split_by_rows, split_by_span

BASE = datetime(2024, 3, 1, tzinfo=timezone.utc)
BASE_S = BASE.timestamp()


def utc_table(offsets: list[float]) -> pa.Table:
    """Rows with a timestamp[us, UTC] column ``ts`` at BASE + offset seconds and their index ``i``."""
    stamps = [BASE + timedelta(seconds=offset) for offset in offsets]
    return pa.table({"ts": pa.array(stamps, pa.timestamp("us", tz="UTC")), "i": list(range(len(offsets)))})


def ids(window: WindowSlice | pa.Table) -> list[int]:
    table = window.rows if isinstance(window, WindowSlice) else window
    return table.column("i").to_pylist()


# ---- by rows ------------------------------------------------------------------------------


def test_rows_exact_multiple_leaves_no_remainder() -> None:
    table = pa.table({"i": list(range(9))})
    windows, remainder = split_by_rows(table, 3)
    assert [ids(w) for w in windows] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert remainder.num_rows == 0
    assert all(w.started_at is None and w.ended_at is None for w in windows)


def test_rows_remainder_waits_for_more_data() -> None:
    windows, remainder = split_by_rows(pa.table({"i": list(range(7))}), 3)
    assert [ids(w) for w in windows] == [[0, 1, 2], [3, 4, 5]]
    assert ids(remainder) == [6]


def test_rows_empty_table_gives_nothing() -> None:
    windows, remainder = split_by_rows(pa.table({"i": pa.array([], pa.int64())}), 5)
    assert windows == [] and remainder.num_rows == 0


def test_rows_time_bounds_come_from_the_timestamp_column() -> None:
    windows, _ = split_by_rows(utc_table([5, 1, 3, 40, 20, 30]), 3, timestamp="ts")
    assert (windows[0].started_at, windows[0].ended_at) == (BASE + timedelta(seconds=1), BASE + timedelta(seconds=5))
    assert (windows[1].started_at, windows[1].ended_at) == (BASE + timedelta(seconds=20), BASE + timedelta(seconds=40))


# ---- by span ------------------------------------------------------------------------------


def test_span_windows_align_to_span_multiples() -> None:
    # BASE is a whole minute, so windows start at BASE, BASE+60, ...
    windows, remainder = split_by_span(utc_table([7, 59, 61, 119.5, 125]), "ts", 60, None)
    assert [ids(w) for w in windows] == [[0, 1], [2, 3]]
    assert [w.started_at for w in windows] == [BASE, BASE + timedelta(seconds=60)]
    assert [w.ended_at for w in windows] == [BASE + timedelta(seconds=60), BASE + timedelta(seconds=120)]
    assert ids(remainder) == [4]


def test_span_window_stays_open_until_a_later_row_arrives() -> None:
    windows, remainder = split_by_span(utc_table([1, 10, 50]), "ts", 60, None)
    assert windows == []
    assert ids(remainder) == [0, 1, 2]
    windows, remainder = split_by_span(pa.concat_tables([remainder, utc_table([61])]), "ts", 60, None)
    assert [ids(w) for w in windows] == [[0, 1, 2]]
    assert remainder.num_rows == 1


def test_span_unsorted_rows_land_in_their_windows() -> None:
    windows, remainder = split_by_span(utc_table([130, 5, 70, 10, 65, 200]), "ts", 60, None)
    assert [sorted(ids(w)) for w in windows] == [[1, 3], [2, 4], [0]]
    assert ids(remainder) == [5]


def test_span_gaps_produce_no_empty_windows() -> None:
    windows, remainder = split_by_span(utc_table([1, 3600 + 1, 7200 + 1]), "ts", 60, None)
    assert [ids(w) for w in windows] == [[0], [1]]
    assert [w.started_at for w in windows] == [BASE, BASE + timedelta(hours=1)]
    assert ids(remainder) == [2]


def test_span_late_rows_join_the_oldest_open_window() -> None:
    watermark = BASE_S + 120  # windows up to BASE+120 are already closed
    windows, remainder = split_by_span(utc_table([5, 130, 65, 185]), "ts", 60, watermark)
    # rows 0 (BASE+5) and 2 (BASE+65) are late: they join [120, 180) with row 1
    assert [sorted(ids(w)) for w in windows] == [[0, 1, 2]]
    assert windows[0].started_at == BASE + timedelta(seconds=120)
    assert ids(remainder) == [3]


def test_span_late_rows_alone_stay_open() -> None:
    windows, remainder = split_by_span(utc_table([1, 2]), "ts", 60, BASE_S + 600)
    assert windows == [] and sorted(ids(remainder)) == [0, 1]


def test_span_empty_table() -> None:
    windows, remainder = split_by_span(utc_table([]), "ts", 60, None)
    assert windows == [] and remainder.num_rows == 0


def test_span_epoch_number_column() -> None:
    table = pa.table({"ts": [0.5, 9.9, 10.0, 25.0], "i": [0, 1, 2, 3]})
    windows, remainder = split_by_span(table, "ts", 10, None)
    assert [ids(w) for w in windows] == [[0, 1], [2]]
    assert windows[1].started_at == datetime(1970, 1, 1, 0, 0, 10, tzinfo=timezone.utc)
    assert ids(remainder) == [3]


@pytest.mark.parametrize(
    "stamps",
    [
        ["2024-03-01T00:00:05Z", "2024-03-01T00:01:05+00:00", "2024-03-01T01:02:10+01:00"],
        ["2024-03-01T00:00:05", "2024-03-01 00:01:05", "2024-03-01T00:02:10"],
    ],
)
def test_span_iso_string_column(stamps: list[str]) -> None:
    table = pa.table({"ts": stamps, "i": [0, 1, 2]})
    windows, remainder = split_by_span(table, "ts", 60, None)
    assert [ids(w) for w in windows] == [[0], [1]]
    assert windows[0].started_at == BASE
    assert ids(remainder) == [2]


@pytest.mark.parametrize(
    "column",
    [
        pa.array([BASE, None], pa.timestamp("us", tz="UTC")),
        pa.array([1.0, None]),
        pa.array(["2024-03-01T00:00:00Z", None]),
        pa.array([1.0, float("nan")]),
    ],
)
def test_span_missing_timestamps_name_the_column(column: pa.Array) -> None:
    with pytest.raises(WindowError, match="'event_time'"):
        split_by_span(pa.table({"event_time": column}), "event_time", 60, None)


@pytest.mark.parametrize(
    "column",
    [pa.array([True, False]), pa.array([{"a": 1}, {"a": 2}]), pa.array(["noon", "later"])],
)
def test_span_unusable_timestamp_type_is_a_window_error(column: pa.Array) -> None:
    with pytest.raises(WindowError, match="'event_time'"):
        split_by_span(pa.table({"event_time": column}), "event_time", 60, None)


# ---- the engine's loop, property-tested ----------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=20_000), min_size=0, max_size=80),
    span=st.sampled_from([1, 7, 60, 90, 3600]),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=6),
)
def test_span_feeding_the_remainder_back_loses_no_row(offsets: list[int], span: int, cuts: list[int]) -> None:
    """Like the engine: pending rows + each new batch are split; the watermark is the last window end."""
    table = utc_table([float(offset) for offset in offsets])
    bounds = sorted({0, len(offsets), *(min(cut, len(offsets)) for cut in cuts)})
    pending = table.slice(0, 0)
    watermark: float | None = None
    closed: list[WindowSlice] = []
    for start, stop in zip(bounds, bounds[1:]):
        rows = pa.concat_tables([pending, table.slice(start, stop - start)])
        windows, pending = split_by_span(rows, "ts", span, watermark)
        for window in windows:
            assert window.rows.num_rows > 0
            assert window.ended_at is not None and window.started_at is not None
            assert (window.ended_at - window.started_at).total_seconds() == span
            if watermark is not None:
                assert window.started_at.timestamp() >= watermark  # never overlaps a closed window
        if windows:
            watermark = windows[-1].ended_at.timestamp()
        closed.extend(windows)

    seen = sorted(i for window in closed for i in ids(window)) + ids(pending)
    assert sorted(seen) == list(range(len(offsets)))  # every row exactly once
    starts = [w.started_at for w in closed]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)  # ordered, never overlapping
    for window in closed:  # a row sits in its own window unless it was late
        for offset in window.rows.column("ts").to_pylist():
            assert offset < window.ended_at
    if pending.num_rows:  # the remainder is exactly one open window, after every closed one
        floor = watermark // span if watermark is not None else float("-inf")
        buckets = {max(stamp.timestamp() // span, floor) for stamp in pending.column("ts").to_pylist()}
        assert len(buckets) == 1
        if closed:
            assert buckets.pop() * span >= closed[-1].ended_at.timestamp()

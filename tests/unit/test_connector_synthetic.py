"""The synthetic connector: deterministic rows, scheduled shifts, option validation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.connector import ConnectorError, ConnectorOptionsError
from plugins.connectors import synthetic
from plugins.connectors.synthetic import (
    CATEGORICAL_FEATURES,
    NUMERIC_FEATURES,
    SyntheticConnector,
    demo_shifts,
)


def read_all(connector: SyntheticConnector, sizes: list[int], cursor: object = None) -> pa.Table:
    """Fetch with the given sizes in turn; the cursor must equal the row count each time."""
    tables = []
    for size in sizes:
        batch = connector.fetch(cursor, size)
        assert batch.cursor == (cursor or 0) + batch.num_rows
        cursor = json.loads(json.dumps(batch.cursor))
        tables.append(batch.table)
    return pa.concat_tables(tables)


def column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def test_schema_and_timestamps() -> None:
    options = {"start": "2026-03-01T12:00:00Z", "interval_seconds": 0.5}
    table = SyntheticConnector(options).fetch(None, 10).table
    assert table.column_names == ["ts", *NUMERIC_FEATURES, *CATEGORICAL_FEATURES]
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    start = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
    assert table.column("ts").to_pylist() == [start + timedelta(seconds=i / 2) for i in range(10)]


def test_same_rows_whatever_the_fetch_sizes() -> None:
    options = {"seed": 7, "rows_per_fetch": 5000, "shifts": demo_shifts(1500)}
    whole = SyntheticConnector(options).fetch(None, 3000).table
    pieces = read_all(SyntheticConnector(options), [7, 1000, 333, 1024, 636])
    assert pieces.num_rows == 3000
    assert pieces.equals(whole)


_WHOLE = SyntheticConnector(
    {"seed": 11, "rows_per_fetch": 5600, "shifts": demo_shifts(1000)}
).fetch(None, 5600).table


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_any_fetch_sizes_give_the_same_rows(sizes: list[int]) -> None:
    options = {"seed": 11, "rows_per_fetch": 700, "shifts": demo_shifts(1000)}
    table = read_all(SyntheticConnector(options), sizes)
    assert table.equals(_WHOLE.slice(0, table.num_rows))


def test_restart_from_a_cursor_continues_the_stream() -> None:
    whole = SyntheticConnector({"seed": 1, "rows_per_fetch": 4000}).fetch(None, 4000).table
    tail = SyntheticConnector({"seed": 1}).fetch(2500, 1000).table
    assert tail.equals(whole.slice(2500, 1000))


def test_seed_changes_the_data() -> None:
    a = SyntheticConnector({"seed": 1}).fetch(None, 100).table
    b = SyntheticConnector({"seed": 2}).fetch(None, 100).table
    assert not np.allclose(column(a, "temperature"), column(b, "temperature"))


def test_base_distributions_are_realistic() -> None:
    table = SyntheticConnector({"rows_per_fetch": 20_000}).fetch(None, 20_000).table
    assert column(table, "temperature").mean() == pytest.approx(21, abs=0.1)
    assert column(table, "temperature").std() == pytest.approx(1.5, abs=0.1)
    assert column(table, "rpm").mean() == pytest.approx(1500, abs=3)
    assert column(table, "vibration").min() >= 0
    status = column(table, "status")
    assert set(status) == {"ok", "idle", "maintenance"}
    assert (status == "ok").mean() == pytest.approx(0.8, abs=0.02)
    assert set(column(table, "site")) == {"north", "south", "east", "west"}


def test_rows_per_fetch_and_total_rows_bound_a_fetch() -> None:
    connector = SyntheticConnector({"rows_per_fetch": 100, "total_rows": 250})
    assert connector.fetch(None, 1000).num_rows == 100
    assert connector.fetch(100, 30).num_rows == 30
    last = connector.fetch(200, 1000)
    assert (last.num_rows, last.cursor) == (50, 250)
    done = connector.fetch(250, 1000)
    assert done.num_rows == 0 and done.cursor == 250
    assert done.table.schema == last.table.schema


def shifted(shift: dict, rows: int = 8000) -> tuple[pa.Table, pa.Table]:
    """The same stream without and with one shift starting at row 4000."""
    options = {"seed": 3, "rows_per_fetch": rows}
    base = SyntheticConnector(options).fetch(None, rows).table
    moved = SyntheticConnector({**options, "shifts": [shift]}).fetch(None, rows).table
    return base, moved


def test_mean_shift_moves_the_mean_from_start_row() -> None:
    shift = {"kind": "mean_shift", "feature": "temperature", "start_row": 4000, "amount": 3.0}
    base, moved = shifted(shift)
    before, after = column(moved, "temperature")[:4000], column(moved, "temperature")[4000:]
    np.testing.assert_array_equal(before, column(base, "temperature")[:4000])
    np.testing.assert_allclose(after - column(base, "temperature")[4000:], 3.0)
    assert after.mean() - before.mean() == pytest.approx(3.0, abs=0.15)
    assert moved.drop(["temperature"]).equals(base.drop(["temperature"]))


def test_mean_shift_ends_at_end_row() -> None:
    shift = {
        "kind": "mean_shift", "feature": "rpm", "start_row": 4000, "end_row": 5000, "amount": 10,
    }
    base, moved = shifted(shift)
    delta = column(moved, "rpm") - column(base, "rpm")
    np.testing.assert_allclose(delta[4000:5000], 10)
    assert not delta[:4000].any() and not delta[5000:].any()


def test_variance_change_scales_the_spread_from_start_row() -> None:
    shift = {"kind": "variance_change", "feature": "voltage", "start_row": 4000, "factor": 3.0}
    base, moved = shifted(shift)
    values = column(moved, "voltage")
    np.testing.assert_array_equal(values[:4000], column(base, "voltage")[:4000])
    assert values[4000:].std() / values[:4000].std() == pytest.approx(3.0, rel=0.1)
    assert values[4000:].mean() == pytest.approx(230, abs=0.3)


def test_variance_change_keeps_an_earlier_mean_shift() -> None:
    shifts = [
        {"kind": "mean_shift", "feature": "voltage", "start_row": 0, "amount": 20.0},
        {"kind": "variance_change", "feature": "voltage", "start_row": 0, "factor": 2.0},
    ]
    table = SyntheticConnector({"shifts": shifts, "rows_per_fetch": 5000}).fetch(None, 5000).table
    assert column(table, "voltage").mean() == pytest.approx(250, abs=0.3)
    assert column(table, "voltage").std() == pytest.approx(4.0, rel=0.1)


def test_new_category_appears_only_from_start_row() -> None:
    shift = {
        "kind": "new_category", "feature": "status", "start_row": 4000,
        "category": "fault", "share": 0.3,
    }
    base, moved = shifted(shift)
    status = column(moved, "status")
    assert "fault" not in set(status[:4000])
    assert (status[4000:] == "fault").mean() == pytest.approx(0.3, abs=0.03)
    kept = status[4000:] != "fault"
    np.testing.assert_array_equal(status[4000:][kept], column(base, "status")[4000:][kept])


def test_sensor_swap_swaps_the_two_columns_from_start_row() -> None:
    shift = {"kind": "sensor_swap", "features": ["pressure", "humidity"], "start_row": 4000}
    base, moved = shifted(shift)
    for a, b in [("pressure", "humidity"), ("humidity", "pressure")]:
        np.testing.assert_array_equal(column(moved, a)[:4000], column(base, a)[:4000])
        np.testing.assert_array_equal(column(moved, a)[4000:], column(base, b)[4000:])


def test_demo_shifts_leave_voltage_rpm_and_site_alone() -> None:
    options = {"seed": 3, "rows_per_fetch": 8000}
    base = SyntheticConnector(options).fetch(None, 8000).table
    moved = SyntheticConnector({**options, "shifts": demo_shifts(4000)}).fetch(None, 8000).table
    assert moved.slice(0, 4000).equals(base.slice(0, 4000))
    for name in ("voltage", "rpm", "site", "ts"):
        assert moved.column(name).equals(base.column(name))
    for name in ("temperature", "vibration", "status", "pressure", "humidity"):
        assert not moved.column(name).slice(4000).equals(base.column(name).slice(4000))
    assert pc.min(moved.column("vibration")).as_py() >= 0


def test_registers_through_the_hook() -> None:
    assert synthetic.driftd_connectors() == {"synthetic": SyntheticConnector}
    assert SyntheticConnector.type_name == "synthetic"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"sed": 1}, "'sed' is unknown"),
        ({"seed": "one"}, "'seed'"),
        ({"seed": 1.5}, "'seed'"),
        ({"seed": -1}, "'seed'"),
        ({"rows_per_fetch": 0}, "'rows_per_fetch'"),
        ({"interval_seconds": -1}, "'interval_seconds'"),
        ({"start": "yesterday"}, "'start'"),
        ({"total_rows": "many"}, "'total_rows'"),
        ({"shifts": [{"kind": "drift", "start_row": 0}]}, "does not match any of the expected"),
        (
            {"shifts": [{"kind": "mean_shift", "feature": "status", "start_row": 0, "amount": 1}]},
            "must be a numeric feature",
        ),
        (
            {"shifts": [{"kind": "mean_shift", "feature": "speed", "start_row": 0, "amount": 1}]},
            "shifts[0].mean_shift.feature",
        ),
        ({"shifts": [{"kind": "mean_shift", "feature": "rpm", "amount": 1}]}, "start_row"),
        (
            {"shifts": [{"kind": "variance_change", "feature": "rpm", "start_row": 0,
                         "factor": 2, "scale": 1}]},
            "'shifts[0].variance_change.scale' is unknown",
        ),
        (
            {"shifts": [{"kind": "new_category", "feature": "rpm", "start_row": 0,
                         "category": "x", "share": 0.1}]},
            "must be a categorical feature",
        ),
        (
            {"shifts": [{"kind": "new_category", "feature": "site", "start_row": 0,
                         "category": "north", "share": 0.1}]},
            "already exists",
        ),
        (
            {"shifts": [{"kind": "sensor_swap", "features": ["rpm", "site"], "start_row": 0}]},
            "must be a numeric feature",
        ),
        (
            {"shifts": [{"kind": "sensor_swap", "features": ["rpm", "rpm"], "start_row": 0}]},
            "two different features",
        ),
        (
            {"shifts": [{"kind": "mean_shift", "feature": "rpm", "start_row": 5, "end_row": 5,
                         "amount": 1}]},
            "end_row must be greater",
        ),
    ],
)
def test_bad_options_are_refused_by_name(options: dict, named: str) -> None:
    with pytest.raises(ConnectorOptionsError) as caught:
        SyntheticConnector(options)
    assert named in str(caught.value)
    assert str(caught.value).startswith("synthetic connector: option ")


@pytest.mark.parametrize("cursor", ["10", -1, {"row": 1}, True])
def test_bad_cursor_is_a_connector_error(cursor: object) -> None:
    with pytest.raises(ConnectorError, match="invalid cursor"):
        SyntheticConnector({}).fetch(cursor, 10)

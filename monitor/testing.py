"""The plugin kit: conformance checks a plugin author runs from one pytest test.

Connectors::

    from monitor.testing import check_bad_options, check_connector

    def test_my_connector_honours_the_contract(tmp_path):
        source = MySource(tmp_path)                      # starts empty
        check_connector(lambda: MyConnector({"path": str(tmp_path)}), source.append,
                        total_rows=250, id_column="id")

    def test_my_connector_rejects_bad_options():
        check_bad_options(MyConnector, [("path", {}), ("path", {"path": 3})])

Each check raises AssertionError saying which promise was broken and how.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Mapping

import pyarrow as pa

from monitor.connector import Batch, Connector, ConnectorOptionsError, Cursor

# ---- connectors ---------------------------------------------------------------------------


def drain(connector: Connector, cursor: Cursor, max_rows: int, limit: int = 1_000_000) -> tuple[pa.Table, Cursor]:
    """Fetch until an empty batch; return every row read and the final cursor.

    Checks on the way that each batch holds at most ``max_rows`` rows, that its cursor is
    JSON-serialisable, and that an empty batch hands back the cursor it was given.
    """
    tables: list[pa.Table] = []
    for _ in range(limit):
        batch = connector.fetch(cursor, max_rows)
        _check_batch(batch, cursor, max_rows)
        if batch.num_rows == 0:
            return (_concat(tables) if tables else batch.table), batch.cursor
        tables.append(batch.table)
        cursor = batch.cursor
    raise AssertionError(f"fetch(max_rows={max_rows}) still returned rows after {limit} calls")


def check_connector(
    make: Callable[[], Connector],
    write_rows: Callable[[int], None] | None = None,
    *,
    total_rows: int,
    id_column: str = "id",
    max_rows_values: Iterable[int] = (1, 7, 100),
    new_rows: int = 5,
) -> None:
    """Assert the connector contract on a source of ``total_rows`` rows told apart by ``id_column``.

    Without ``write_rows``, ``make()`` builds a connector over a source that already holds
    exactly ``total_rows`` rows. With it, the source starts EMPTY and ``write_rows(n)`` appends
    ``n`` new rows (with new ids) to it: the suite writes ``total_rows`` rows itself, and later
    ``new_rows`` more that must be picked up.

    Checked: an empty source gives an empty table and the same cursor; reading everything with
    each of ``max_rows_values`` gives every row once, in the same order, each batch within
    ``max_rows``; a NEW connector given a JSON round-tripped cursor continues exactly where the
    old one stopped; fetching after the end gives nothing; rows written after the end are read.
    """
    limit = total_rows + new_rows + 2  # every fetch but the last must return at least one row
    if write_rows is not None:
        ids, cursor = _read_ids(make, None, 100, id_column, limit)
        assert ids == [], f"an empty source returned rows {ids[:10]}"
        assert cursor is None, f"an empty source moved the cursor to {cursor!r}"
        write_rows(total_rows)
    orders = {size: _read_ids(make, None, size, id_column, limit) for size in max_rows_values}
    for size, (ids, _) in orders.items():
        _check_ids(ids, total_rows, f"reading with max_rows={size}")
    (first_size, (expected, end)), *others = orders.items()
    for size, (ids, _) in others:
        assert ids == expected, (
            f"reading with max_rows={size} gave another order than with max_rows={first_size}: "
            f"first difference at row {_first_difference(ids, expected)}")
    restarted = _read_with_restarts(make, sorted(orders)[len(orders) // 2], id_column, limit)
    assert restarted == expected, (
        "restarting a new connector from each stored cursor (JSON round trip) gave other rows: "
        f"first difference at row {_first_difference(restarted, expected)}")
    end = _round_trip(end)
    after, cursor = _read_ids(make, end, first_size, id_column, limit)
    assert after == [], f"fetch after the end returned rows {after[:10]}"
    assert cursor == end, f"fetch after the end moved the cursor from {end!r} to {cursor!r}"
    if write_rows is not None and new_rows:
        write_rows(new_rows)
        added, _ = _read_ids(make, end, first_size, id_column, limit)
        _check_ids(added, new_rows, f"reading the {new_rows} rows written after the end")
        again = sorted(set(added) & set(expected), key=str)
        assert not again, f"rows written after the end repeated earlier rows {again[:10]}"


def check_bad_options(connector_class: type[Connector], bad_options: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
    """Assert each ``(option, options)`` pair fails with a ConnectorOptionsError naming ``option``.

    The error may come from the constructor or, for options only the source can judge (a
    table that does not exist), from the first ``fetch``.
    """
    for option, options in bad_options:
        connector = None
        try:
            connector = connector_class(options)
            connector.fetch(None, 1)
        except ConnectorOptionsError as error:
            assert option in str(error), f"{options!r}: the error does not name option {option!r}: {error}"
        except Exception as error:  # noqa: BLE001 - any other failure breaks the contract
            raise AssertionError(
                f"{options!r}: expected ConnectorOptionsError naming {option!r}, got {type(error).__name__}: {error}"
            ) from error
        else:
            raise AssertionError(f"{options!r}: accepted, expected ConnectorOptionsError naming {option!r}")
        finally:
            if connector is not None:
                connector.close()


def _check_batch(batch: Batch, cursor: Cursor, max_rows: int) -> None:
    assert isinstance(batch, Batch), f"fetch returned {type(batch).__name__}, expected a Batch"
    assert batch.num_rows <= max_rows, f"fetch(max_rows={max_rows}) returned {batch.num_rows} rows"
    try:
        json.dumps(batch.cursor)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"cursor {batch.cursor!r} is not JSON-serialisable: {error}") from None
    if batch.num_rows == 0:
        assert batch.cursor == cursor, f"an empty batch moved the cursor from {cursor!r} to {batch.cursor!r}"


def _read_ids(make: Callable[[], Connector], cursor: Cursor, max_rows: int, id_column: str,
              limit: int) -> tuple[list[Any], Cursor]:
    connector = make()
    try:
        table, cursor = drain(connector, cursor, max_rows, limit)
    finally:
        connector.close()
    return _ids(table, id_column), cursor


def _read_with_restarts(make: Callable[[], Connector], max_rows: int, id_column: str, limit: int) -> list[Any]:
    """Read everything with a new connector for every batch, as after a restart at each cursor."""
    ids: list[Any] = []
    cursor: Cursor = None
    for _ in range(limit):
        connector = make()
        try:
            batch = connector.fetch(cursor, max_rows)
        finally:
            connector.close()
        _check_batch(batch, cursor, max_rows)
        if batch.num_rows == 0:
            return ids
        ids += _ids(batch.table, id_column)
        cursor = _round_trip(batch.cursor)
    raise AssertionError(f"fetch(max_rows={max_rows}) from restored cursors still returned rows after {limit} calls")


def _ids(table: pa.Table, id_column: str) -> list[Any]:
    if table.num_rows == 0:
        return []
    assert id_column in table.column_names, f"rows have no id column {id_column!r} (they have {table.column_names})"
    return table.column(id_column).to_pylist()


def _check_ids(ids: list[Any], expected_rows: int, what: str) -> None:
    seen: set[Any] = set()
    repeated = [row for row in ids if row in seen or seen.add(row)]
    assert not repeated, f"{what}: rows repeated: {repeated[:10]}"
    assert len(ids) == expected_rows, f"{what}: read {len(ids)} rows, expected {expected_rows}"


def _round_trip(cursor: Cursor) -> Cursor:
    return json.loads(json.dumps(cursor))


def _first_difference(ids: list[Any], expected: list[Any]) -> int:
    return next((i for i, (a, b) in enumerate(zip(ids, expected)) if a != b), min(len(ids), len(expected)))


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="permissive")

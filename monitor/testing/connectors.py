"""The connector conformance checks: every row exactly once, restarts, acknowledgements, bad options."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Literal, Mapping

import pyarrow as pa

from monitor.connector import Batch, Connector, ConnectorOptionsError, Cursor


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
    mode: Literal["replay", "ack"] = "replay",
) -> None:
    """Assert the connector contract on a source of ``total_rows`` rows told apart by ``id_column``.

    Without ``write_rows``, ``make()`` builds a connector over a source that already holds
    exactly ``total_rows`` rows. With it, the source starts EMPTY and ``write_rows(n)`` appends
    ``n`` new rows (with new ids) to it: the suite writes ``total_rows`` rows itself, and later
    ``new_rows`` more that must be picked up.

    ``mode="replay"`` (a source that can be read again from any cursor: files, tables, streams)
    checks: an empty source gives an empty table and the same cursor; reading everything with
    each of ``max_rows_values`` gives every row once, in the same order, each batch within
    ``max_rows``; a NEW connector given a JSON round-tripped cursor continues exactly where the
    old one stopped; fetching after the end gives nothing; rows written after the end are read.

    ``mode="ack"`` (a source that hands rows out until ``commit`` acknowledges them and cannot be
    re-read: a classic queue; needs ``write_rows``) reads as the engine does, calling ``commit``
    after each batch it counts and once on every start, and checks that every row is counted
    exactly once although: rows are fetched and never committed (a tick that failed, then a
    restart: they must come again), a batch is committed but its ``commit`` call never made (a
    crash between driftd's transaction and the acknowledgement: its rows must not come again),
    connectors are closed and new ones started part-way, and ``max_rows`` changes from batch to
    batch; then that fetching after the end gives nothing, and rows written later are read.
    """
    if mode == "ack":
        assert write_rows is not None, "mode='ack' needs write_rows: the source starts empty and cannot be re-read"
        _check_acknowledging(make, write_rows, total_rows, id_column, list(max_rows_values), new_rows)
        return
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


class _EngineLike:
    """Reads an acknowledging source as the engine does: commit after each counted batch, and at start-up."""

    def __init__(self, make: Callable[[], Connector], id_column: str) -> None:
        self.make, self.id_column = make, id_column
        self.committed: Cursor = None
        self.counted: list[Any] = []
        self.connector = make()
        self.connector.commit(None)

    def fetch(self, max_rows: int) -> Batch:
        """One fetch from the committed cursor (nothing counted yet)."""
        batch = self.connector.fetch(self.committed, max_rows)
        _check_batch(batch, self.committed, max_rows)
        return batch

    def count(self, batch: Batch, acknowledge: bool = True) -> None:
        """Commit ``batch`` as driftd's transaction would, then (unless a crash comes first) tell the source."""
        self.counted += _ids(batch.table, self.id_column)
        self.committed = _round_trip(batch.cursor)
        if acknowledge:
            self.connector.commit(self.committed)

    def restart(self) -> None:
        """Close the connector (a stop, or a crash: nothing more is acknowledged) and start a new one."""
        self.connector.close()
        self.connector = self.make()
        self.connector.commit(self.committed)

    def close(self) -> None:
        """Close the connector."""
        self.connector.close()


def _check_acknowledging(make: Callable[[], Connector], write_rows: Callable[[int], None], total_rows: int,
                         id_column: str, sizes: list[int], new_rows: int) -> None:
    engine = _EngineLike(make, id_column)
    try:
        empty = engine.fetch(max(sizes))
        assert empty.num_rows == 0, f"an empty source returned rows {_ids(empty.table, id_column)[:10]}"
        write_rows(total_rows)
        if total_rows:
            first = engine.fetch(sizes[0])
            assert first.num_rows, "a source holding rows returned none"
            retry = engine.fetch(sizes[0])  # from the same cursor, as after a tick that failed: nothing counted
            handed = _ids(first.table, id_column)
            assert _ids(retry.table, id_column)[:len(handed)] == handed, (
                f"a fetch retried from the committed cursor did not give the uncommitted rows {handed[:10]} again")
            engine.restart()  # fetched, never committed: the rows must come again
        for step in range(total_rows + 2):
            batch = engine.fetch(sizes[step % len(sizes)])
            if batch.num_rows == 0:
                break
            if step == 1:
                engine.count(batch, acknowledge=False)  # committed, then a crash before the acknowledgement
                engine.restart()
            elif step == 3:
                engine.count(batch)
                engine.restart()  # a clean restart right after an acknowledgement
            else:
                engine.count(batch)
        else:
            raise AssertionError(f"fetch still returned rows after {total_rows + 2} batches of at least one row")
        _check_ids(engine.counted, total_rows, "reading, committing and restarting as the engine does")
        end = engine.committed
        after = engine.fetch(sizes[0])
        assert after.num_rows == 0, f"fetch after the end returned rows {_ids(after.table, id_column)[:10]}"
        engine.restart()
        after = engine.fetch(sizes[0])
        assert after.num_rows == 0, (
            f"a new connector from the last committed cursor got rows again: {_ids(after.table, id_column)[:10]}")
        assert engine.committed == end
        if new_rows:
            write_rows(new_rows)
            for _ in range(new_rows + 1):
                batch = engine.fetch(sizes[-1])
                if batch.num_rows == 0:
                    break
                engine.count(batch)
            _check_ids(engine.counted[total_rows:], new_rows, f"reading the {new_rows} rows written after the end")
            again = sorted(set(engine.counted[total_rows:]) & set(engine.counted[:total_rows]), key=str)
            assert not again, f"rows written after the end repeated earlier rows {again[:10]}"
    finally:
        engine.close()


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

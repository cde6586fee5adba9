"""The files connector: cursor contract, formats, growing files, errors."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.connector import Batch, ConnectorError, ConnectorOptionsError
from plugins.connectors import files
from plugins.connectors.files import FilesConnector


def write_csv(path: Path, start: int, stop: int, header: bool = True) -> None:
    lines = ["id,value\n"] if header else []
    lines += [f"{i},{i * 0.5}\n" for i in range(start, stop)]
    with path.open("a") as file:
        file.write("".join(lines))


def write_jsonl(path: Path, start: int, stop: int) -> None:
    rows = [json.dumps({"id": i, "value": i * 0.5}) + "\n" for i in range(start, stop)]
    with path.open("a") as file:
        file.write("".join(rows))


def write_parquet(path: Path, start: int, stop: int) -> None:
    ids = list(range(start, stop))
    pq.write_table(pa.table({"id": ids, "value": [i * 0.5 for i in ids]}), path)


def drain(connector: FilesConnector, cursor: object, sizes: list[int]) -> tuple[list[int], object]:
    """Fetch with the given max_rows in turn (cycling) until a fetch is empty; return the ids."""
    ids: list[int] = []
    for step in range(10_000):
        batch = connector.fetch(cursor, sizes[step % len(sizes)])
        assert batch.num_rows <= sizes[step % len(sizes)]
        if batch.num_rows == 0:
            assert batch.cursor == cursor
            return ids, cursor
        ids += batch.table.column("id").to_pylist()
        cursor = json.loads(json.dumps(batch.cursor))
    raise AssertionError("fetch never ran dry")


@pytest.fixture
def three_formats(tmp_path: Path) -> Path:
    write_csv(tmp_path / "a.csv", 0, 10)
    write_parquet(tmp_path / "b.parquet", 10, 25)
    write_jsonl(tmp_path / "c.jsonl", 25, 32)
    (tmp_path / "notes.txt").write_text("not data\n")
    return tmp_path


@pytest.mark.parametrize("sizes", [[1], [3], [7, 1000, 333], [4, 11], [1000]])
def test_no_row_skipped_or_repeated_across_files(three_formats: Path, sizes: list[int]) -> None:
    ids, cursor = drain(FilesConnector({"path": str(three_formats)}), None, sizes)
    assert ids == list(range(32))
    assert (cursor["file"], cursor["row"]) == (str(three_formats / "c.jsonl"), 7)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 30), min_size=1, max_size=5),
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
)
def test_cursor_contract_for_any_files_and_sizes(lengths: list[int], sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        start = 0
        for index, length in enumerate(lengths):
            write_csv(Path(directory) / f"{index:02d}.csv", start, start + length)
            start += length
        ids, _ = drain(FilesConnector({"path": directory}), None, sizes)
    assert ids == list(range(start))


def test_one_fetch_spans_files_and_keeps_types(three_formats: Path) -> None:
    batch = FilesConnector({"path": str(three_formats)}).fetch(None, 20)
    assert batch.table.column("id").to_pylist() == list(range(20))
    assert batch.table.schema.field("id").type == pa.int64()
    assert batch.table.schema.field("value").type == pa.float64()
    assert (batch.cursor["file"], batch.cursor["row"]) == (str(three_formats / "b.parquet"), 10)


def test_each_format_alone(three_formats: Path) -> None:
    for name, expected in [("a.csv", range(10)), ("b.parquet", range(10, 25)),
                           ("c.jsonl", range(25, 32))]:
        batch = FilesConnector({"path": str(three_formats / name)}).fetch(None, 100)
        assert batch.table.column("id").to_pylist() == list(expected)


def test_glob_and_format_option(tmp_path: Path) -> None:
    (tmp_path / "day1").mkdir()
    (tmp_path / "day2").mkdir()
    write_csv(tmp_path / "day1" / "x.txt", 0, 3)
    write_csv(tmp_path / "day2" / "x.txt", 3, 5)
    connector = FilesConnector({"path": str(tmp_path / "**" / "*.txt"), "format": "csv"})
    assert drain(connector, None, [2])[0] == [0, 1, 2, 3, 4]


def test_unknown_extension_in_a_glob_is_skipped(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", 0, 2)
    (tmp_path / "b.txt").write_text("id\n99\n")
    assert drain(FilesConnector({"path": str(tmp_path / "*")}), None, [10])[0] == [0, 1]


def test_delimiter_and_column_selection(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id;value;extra\n1;2.5;x\n2;3.5;y\n")
    connector = FilesConnector({"path": str(tmp_path), "csv": {"delimiter": ";"},
                                "columns": ["value", "id"]})
    table = connector.fetch(None, 10).table
    assert table.column_names == ["value", "id"]
    assert table.to_pydict() == {"value": [2.5, 3.5], "id": [1, 2]}


def test_missing_selected_column_names_file_and_column(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", 0, 2)
    connector = FilesConnector({"path": str(tmp_path), "columns": ["id", "speed"]})
    with pytest.raises(ConnectorError, match=r"a\.csv has no column 'speed'"):
        connector.fetch(None, 10)


def test_appended_rows_and_new_files_are_picked_up(tmp_path: Path) -> None:
    connector = FilesConnector({"path": str(tmp_path)})
    write_csv(tmp_path / "b.csv", 0, 5)
    ids, cursor = drain(connector, None, [3])
    write_csv(tmp_path / "b.csv", 5, 8, header=False)
    more, cursor = drain(connector, cursor, [3])
    write_csv(tmp_path / "c.csv", 8, 10)
    write_csv(tmp_path / "a.csv", 100, 110)  # sorts before the cursor's file: already finished
    last, cursor = drain(connector, cursor, [3])
    assert (ids, more, last) == ([0, 1, 2, 3, 4], [5, 6, 7], [8, 9])


def test_partial_trailing_line_waits_until_completed(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_jsonl(path, 0, 3)
    with path.open("a") as file:
        file.write('{"id": 3, "va')
    connector = FilesConnector({"path": str(tmp_path)})
    ids, cursor = drain(connector, None, [10])
    assert ids == [0, 1, 2]
    with path.open("a") as file:
        file.write('lue": 1.5}\n')
    assert drain(connector, cursor, [10])[0] == [3]


def test_partial_csv_line_and_header_only(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,value\n")
    connector = FilesConnector({"path": str(tmp_path)})
    empty = connector.fetch(None, 10)
    assert (empty.num_rows, empty.cursor) == (0, None)
    path.write_text("id,value\n0,0.0\n1,0.")
    batch = connector.fetch(None, 10)
    assert batch.table.column("id").to_pylist() == [0]
    with path.open("a") as file:
        file.write("5\n")
    assert connector.fetch(batch.cursor, 10).table.to_pydict() == {"id": [1], "value": [0.5]}


def test_restart_from_a_stored_cursor(three_formats: Path) -> None:
    first = FilesConnector({"path": str(three_formats)}).fetch(None, 12)
    stored = json.dumps(first.cursor)
    rest, _ = drain(FilesConnector({"path": str(three_formats)}), json.loads(stored), [5])
    assert first.table.column("id").to_pylist() + rest == list(range(32))


def test_deleted_cursor_file_continues_with_the_next(three_formats: Path) -> None:
    connector = FilesConnector({"path": str(three_formats)})
    cursor = connector.fetch(None, 12).cursor
    assert cursor["file"].endswith("b.parquet")
    os.remove(cursor["file"])
    assert drain(connector, cursor, [100])[0] == list(range(25, 32))


def test_unchanged_file_is_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_csv(tmp_path / "a.csv", 0, 5)
    connector = FilesConnector({"path": str(tmp_path)})
    parsed: list[str] = []
    read = files.read_content

    def counting_read(path: str, *args: object) -> object:
        parsed.append(path)
        return read(path, *args)

    monkeypatch.setattr(files, "read_content", counting_read)
    cursor = connector.fetch(None, 2).cursor
    cursor = connector.fetch(cursor, 2).cursor
    assert len(parsed) == 1
    write_csv(tmp_path / "a.csv", 5, 6, header=False)
    assert connector.fetch(cursor, 10).table.column("id").to_pylist() == [4, 5]
    assert len(parsed) == 2


def test_types_are_promoted_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,value\n0,1\n")
    (tmp_path / "b.csv").write_text("id,value\n1,1.5\n")
    table = FilesConnector({"path": str(tmp_path)}).fetch(None, 10).table
    assert table.schema.field("value").type == pa.float64()
    assert table.column("value").to_pylist() == [1.0, 1.5]


def test_a_column_whose_type_differs_between_files_becomes_text(tmp_path: Path) -> None:
    """Numbers in one file, text in the next: both read (as text), never a fetch that fails for good."""
    (tmp_path / "a.csv").write_text("id,value\n0,1\n")
    (tmp_path / "b.csv").write_text("id,value\n1,high\n")
    table = FilesConnector({"path": str(tmp_path)}).fetch(None, 10).table
    assert table.to_pydict() == {"id": [0, 1], "value": ["1", "high"]}


def test_truncated_parquet_is_an_error_and_the_cursor_stays(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", 0, 3)
    write_parquet(tmp_path / "b.parquet", 3, 100)
    data = (tmp_path / "b.parquet").read_bytes()
    (tmp_path / "b.parquet").write_bytes(data[: len(data) // 2])
    connector = FilesConnector({"path": str(tmp_path)})
    first = connector.fetch(None, 3)
    with pytest.raises(ConnectorError, match=str(tmp_path / "b.parquet")):
        connector.fetch(first.cursor, 10)
    write_parquet(tmp_path / "b.parquet", 3, 100)
    assert connector.fetch(first.cursor, 2).table.column("id").to_pylist() == [3, 4]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.csv", b"id,name\n1,\xff\xfe\n"),
        ("a.csv", b"id,name\n1,a,extra\n"),
        ("a.jsonl", b'{"id": 1, "name": "\xff"}\n'),
        ("a.jsonl", b'{"id": 1,\n'),
    ],
)
def test_corrupt_text_is_an_error_naming_the_file(tmp_path: Path, name: str, data: bytes) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ConnectorError, match=f"cannot read {tmp_path / name}"):
        FilesConnector({"path": str(tmp_path)}).fetch(None, 10)


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="does not exist"):
        FilesConnector({"path": str(tmp_path / "nope")}).fetch(None, 10)


def test_glob_without_matches_is_an_empty_batch_said_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    connector = FilesConnector({"path": str(tmp_path / "*.csv")})
    assert connector.fetch(None, 10) == Batch(pa.table({}), None, files=0)
    assert connector.fetch(None, 10).files == 0
    said = [r.getMessage() for r in caplog.records if "matches no file" in r.getMessage()]
    assert said == [f"files connector: {tmp_path / '*.csv'} matches no file: nothing to read until one appears"]
    write_csv(tmp_path / "a.csv", 0, 2)
    assert connector.fetch(None, 10).files == 1
    assert any("matches 1 file(s) now" in r.getMessage() for r in caplog.records)


def test_empty_batch_keeps_the_schema(tmp_path: Path) -> None:
    write_parquet(tmp_path / "a.parquet", 0, 3)
    connector = FilesConnector({"path": str(tmp_path)})
    cursor = connector.fetch(None, 10).cursor
    empty = connector.fetch(cursor, 10)
    assert empty.num_rows == 0 and empty.cursor == cursor
    assert empty.table.column_names == ["id", "value"]


def test_registers_through_the_hook() -> None:
    assert files.driftd_connectors() == {"files": FilesConnector}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "'path' is required"),
        ({"path": 3}, "'path'"),
        ({"path": "x", "fmt": "csv"}, "'fmt' is unknown"),
        ({"path": "x", "format": "xml"}, "'format'"),
        ({"path": "x", "csv": {"delimiter": ";;"}}, "'csv.delimiter'"),
        ({"path": "x", "csv": {"quote": "'"}}, "'csv.quote' is unknown"),
        ({"path": "x", "columns": "id"}, "'columns'"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict, named: str) -> None:
    with pytest.raises(ConnectorOptionsError, match="files connector: option") as caught:
        FilesConnector(options)
    assert named in str(caught.value)


@pytest.mark.parametrize("cursor", [5, {"file": "a.csv"}, {"file": "a.csv", "row": -1}])
def test_bad_cursor_is_a_connector_error(tmp_path: Path, cursor: object) -> None:
    with pytest.raises(ConnectorError, match="invalid cursor"):
        FilesConnector({"path": str(tmp_path)}).fetch(cursor, 10)


def test_date_partitioned_folders_are_read_in_time_order_and_new_partitions_picked_up(tmp_path: Path) -> None:
    def write_partition(day: str, hour: int, first_id: int) -> None:
        folder = tmp_path / "events" / f"dt={day}" / f"hour={hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"id": list(range(first_id, first_id + 5))}), folder / "part-0.parquet")

    write_partition("2026-11-28", 23, 0)
    write_partition("2026-11-29", 0, 5)
    write_partition("2026-11-29", 9, 10)
    connector = FilesConnector({"path": str(tmp_path / "events" / "**" / "*.parquet")})
    first = connector.fetch(None, 100)
    assert first.table.column("id").to_pylist() == list(range(15))
    write_partition("2026-11-29", 10, 15)  # an object-store layout grows by new partitions
    second = connector.fetch(json.loads(json.dumps(first.cursor)), 100)
    assert second.table.column("id").to_pylist() == list(range(15, 20))


def test_an_unreadable_file_stops_the_monitor_until_fixed_unless_told_to_skip_it(tmp_path: Path) -> None:
    import os

    from monitor.connector import ConnectorError
    from plugins.connectors.files import FilesConnector
    from tests.helpers import sample_table, write_csv

    write_csv(tmp_path / "a.csv", sample_table(10, seed=1))
    (tmp_path / "b.parquet").write_bytes(b"PAR1 not really parquet")
    write_csv(tmp_path / "c.csv", sample_table(5, seed=2, start_id=10))
    stopping = FilesConnector({"path": str(tmp_path)})
    first = stopping.fetch(None, 10)
    assert first.num_rows == 10
    with pytest.raises(ConnectorError, match="b.parquet"):
        stopping.fetch(first.cursor, 100)

    skipping = FilesConnector({"path": str(tmp_path), "skip_unreadable_after": "1m"})
    with pytest.raises(ConnectorError, match="b.parquet"):  # just written: it may still be being copied
        skipping.fetch(first.cursor, 100)
    old = os.stat(tmp_path / "b.parquet").st_mtime - 120
    os.utime(tmp_path / "b.parquet", (old, old))
    rest = skipping.fetch(first.cursor, 100)
    assert rest.table.column("id").to_pylist() == list(range(10, 15))
    assert skipping.fetch(rest.cursor, 100).num_rows == 0
    fresh = FilesConnector({"path": str(tmp_path), "skip_unreadable_after": 60})
    before = fresh.fetch(None, 100)
    assert before.num_rows == 10  # rows before the bad file first; the cursor moves past it next time
    assert fresh.fetch(before.cursor, 100).table.column("id").to_pylist() == list(range(10, 15))

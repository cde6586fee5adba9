"""The files connector under hostile input (issue 14): loops and aliases in a walk, files rewritten in
place or replaced, every newline convention, records still being written."""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.connector import ConnectorError
from plugins.connectors._file_records import complete_csv
from plugins.connectors._file_walk import walk_glob
from plugins.connectors.files import FilesConnector


def csv_rows(start: int, stop: int, newline: str = "\n", header: bool = True) -> str:
    lines = (["id,value"] if header else []) + [f"{i},{i * 0.5}" for i in range(start, stop)]
    return "".join(line + newline for line in lines)


def drain(connector: FilesConnector, cursor: Any = None, size: int = 7) -> tuple[list[int], Any]:
    """Fetch until a fetch is empty (the cursor through JSON, as the engine stores it); the ids read."""
    ids: list[int] = []
    for _ in range(1000):
        batch = connector.fetch(cursor, size)
        if batch.num_rows == 0:
            assert batch.cursor == cursor, "an empty fetch must not move the cursor"
            return ids, cursor
        ids += batch.table.column("id").to_pylist()
        cursor = json.loads(json.dumps(batch.cursor))
    raise AssertionError("fetch never ran dry")


def rewrite_in_place(path: Path, text: str) -> None:
    """logrotate's copytruncate: the same file (same inode), truncated, then written again."""
    with open(path, "r+b") as file:
        file.truncate(0)
        file.write(text.encode())


def replace_file(path: Path, text: str) -> None:
    """A new file renamed over the old one: the same name, another inode."""
    staged = path.with_name(".staged")
    staged.write_text(text, newline="")
    os.replace(staged, path)


# ---- the walk -------------------------------------------------------------------------------


def test_a_directory_loop_is_walked_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    (tmp_path / "a.csv").write_text(csv_rows(0, 3))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.csv").write_text(csv_rows(3, 5))
    os.symlink(".", tmp_path / "self")
    os.symlink("..", tmp_path / "sub" / "up")
    connector = FilesConnector({"path": str(tmp_path / "**" / "*.csv")})
    assert drain(connector)[0] == [0, 1, 2, 3, 4]
    said = [r.getMessage() for r in caplog.records if "not following" in r.getMessage()]
    assert len(said) == 2 and all("a loop, or a second path to it" in line for line in said)
    drain(connector)
    assert len([r for r in caplog.records if "not following" in r.getMessage()]) == 2, "said once"


def test_many_loops_end_quickly(tmp_path: Path) -> None:
    """Ten loops in one folder: ``glob`` would walk 10^depth paths; each real folder is entered once here."""
    (tmp_path / "a.csv").write_text(csv_rows(0, 2))
    for index in range(10):
        os.symlink(".", tmp_path / f"loop{index}")
    started = time.perf_counter()
    assert walk_glob(str(tmp_path / "**" / "*.csv"), 1000)[0] == [str(tmp_path / "a.csv")]
    assert time.perf_counter() - started < 2


def test_a_file_keeps_its_plain_path_when_an_alias_sorting_first_appears(tmp_path: Path) -> None:
    """The cursor names files by path: a new symlink must not rename (and so re-read or hide) a file."""
    (tmp_path / "z-data").mkdir()
    (tmp_path / "z-data" / "a.csv").write_text(csv_rows(0, 4))
    connector = FilesConnector({"path": str(tmp_path / "*" / "*.csv")})
    first, cursor = drain(connector, size=2)
    os.symlink("z-data", tmp_path / "a-latest")  # sorts before z-data
    os.symlink(tmp_path / "z-data" / "a.csv", tmp_path / "z-data" / "0-alias.csv")
    with open(tmp_path / "z-data" / "a.csv", "a") as file:
        file.write(csv_rows(4, 6, header=False))
    rest, cursor = drain(connector, cursor)
    assert first + rest == list(range(6))
    assert cursor["file"] == str(tmp_path / "z-data" / "a.csv")


def test_a_symlinked_file_is_read_once_under_its_own_name(tmp_path: Path) -> None:
    (tmp_path / "b.csv").write_text(csv_rows(0, 3))
    os.symlink("b.csv", tmp_path / "a.csv")
    for path in (tmp_path, tmp_path / "*.csv"):
        ids, cursor = drain(FilesConnector({"path": str(path)}))
        assert ids == [0, 1, 2] and cursor["file"] == str(tmp_path / "b.csv")


def test_the_walk_is_bounded_and_says_so(tmp_path: Path) -> None:
    for index in range(5):
        (tmp_path / f"{index}.csv").write_text(csv_rows(index, index + 1))
    for path in (tmp_path, tmp_path / "*.csv"):
        with pytest.raises(ConnectorError, match=r"max_files \(4.*raise max_files"):
            FilesConnector({"path": str(path), "max_files": 4}).fetch(None, 10)
        assert FilesConnector({"path": str(path), "max_files": 6}).fetch(None, 10).num_rows == 5


@settings(max_examples=40, deadline=None)
@given(tree=st.lists(st.tuples(st.lists(st.sampled_from(["d", "e", ".h", "dt=1"]), max_size=3),
                               st.sampled_from(["a.csv", "b.CSV", ".c.csv", "d.jsonl", "e.csv"])),
                     min_size=1, max_size=8),
       pattern=st.sampled_from(["**/*.csv", "*/*.csv", "*.csv", "d/**/*.csv", "**/e.csv", "**/d/*.csv",
                                "*/**/*.csv", "[de]*/*.csv", ".h/*.csv", "**/*"]))
def test_without_links_the_walk_lists_what_glob_lists(tree: list[tuple[list[str], str]], pattern: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        for folders, name in tree:
            folder = Path(directory, *folders)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("x\n")
        full = os.path.join(directory, pattern)
        expected = sorted(p for p in glob.glob(full, recursive=True) if os.path.isfile(p))
        assert walk_glob(full, 10_000)[0] == expected


def test_a_relative_glob_lists_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "a.csv").write_text(csv_rows(0, 1))
    (tmp_path / "b.csv").write_text(csv_rows(1, 2))
    assert walk_glob("*.csv", 100)[0] == ["b.csv"]
    assert walk_glob("**/*.csv", 100)[0] == ["b.csv", "logs/a.csv"]


# ---- files rewritten in place or replaced -------------------------------------------------------


@pytest.mark.parametrize("rewrite", [rewrite_in_place, replace_file])
@pytest.mark.parametrize("restart", [False, True])
def test_a_rewritten_file_is_read_again_from_its_start_once(tmp_path: Path, rewrite: Any, restart: bool,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "app.csv"
    path.write_text(csv_rows(0, 10))
    connector = FilesConnector({"path": str(path)})
    read, cursor = drain(connector)
    rewrite(path, csv_rows(100, 104))  # fewer rows than the cursor's row
    if restart:  # the decision comes from the stored cursor alone
        connector = FilesConnector({"path": str(path)})
    more, cursor = drain(connector, cursor)
    with open(path, "a") as file:
        file.write(csv_rows(104, 106, header=False))
    last, cursor = drain(connector, cursor)
    assert (read, more, last) == (list(range(10)), [100, 101, 102, 103], [104, 105])
    said = [r.getMessage() for r in caplog.records if "rewritten" in r.getMessage()]
    assert len(said) == 1 and f"{path} was rewritten in place or replaced (it shrank from" in said[0]


def test_a_replacement_longer_than_what_was_read_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "app.csv"
    path.write_text(csv_rows(0, 3))
    connector = FilesConnector({"path": str(path)})
    _, cursor = drain(connector)
    replace_file(path, csv_rows(50, 60))
    assert drain(connector, cursor)[0] == list(range(50, 60))


def test_a_copy_with_the_same_rows_and_more_counts_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "app.csv"
    path.write_text(csv_rows(0, 5))
    connector = FilesConnector({"path": str(path)})
    _, cursor = drain(connector)
    replace_file(path, csv_rows(0, 8))  # an editor's save: a new inode, the same first bytes
    assert drain(connector, cursor)[0] == [5, 6, 7]


def test_truncated_to_nothing_waits_then_reads_the_new_rows(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "app.csv"
    path.write_text(csv_rows(0, 5))
    connector = FilesConnector({"path": str(path)})
    _, cursor = drain(connector)
    rewrite_in_place(path, "")
    for _ in range(3):
        assert drain(connector, cursor) == ([], cursor)
    rewrite_in_place(path, csv_rows(7, 9))
    assert drain(connector, cursor)[0] == [7, 8]
    assert len([r for r in caplog.records if "rewritten" in r.getMessage()]) == 1


def test_rows_replaced_before_they_were_read_are_counted_in_the_log(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "app.csv"
    path.write_text(csv_rows(0, 10))
    connector = FilesConnector({"path": str(path)})
    cursor = connector.fetch(None, 4).cursor
    rewrite_in_place(path, csv_rows(20, 22))
    assert connector.fetch(cursor, 10).table.column("id").to_pylist() == [20, 21]
    assert "6 row(s) it held after row 4 were replaced before they were read" in caplog.text


def test_a_cursor_stored_before_the_fingerprint_still_works(tmp_path: Path) -> None:
    path = tmp_path / "app.csv"
    path.write_text(csv_rows(0, 5))
    batch = FilesConnector({"path": str(path)}).fetch({"file": str(path), "row": 3}, 10)
    assert batch.table.column("id").to_pylist() == [3, 4]
    assert set(batch.cursor) == {"file", "row", "bytes", "digest"}


@pytest.mark.parametrize("cursor", [{"file": "a.csv", "row": 1, "bytes": 5},
                                    {"file": "a.csv", "row": 1, "bytes": -1, "digest": "00"},
                                    {"file": "a.csv", "row": 1, "bytes": True, "digest": "00"}])
def test_a_malformed_fingerprint_is_an_invalid_cursor(tmp_path: Path, cursor: dict[str, Any]) -> None:
    with pytest.raises(ConnectorError, match="invalid cursor"):
        FilesConnector({"path": str(tmp_path)}).fetch(cursor, 10)


# ---- line endings and records still being written ---------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_every_newline_convention_and_a_partial_last_record(tmp_path: Path, newline: str, suffix: str) -> None:
    path = tmp_path / f"a{suffix}"
    if suffix == ".csv":
        whole, tail = csv_rows(0, 4, newline), "4,2."
        rest = "0" + newline
    else:
        whole = "".join(json.dumps({"id": i, "value": i / 2}) + newline for i in range(4))
        tail, rest = '{"id": 4, "val', 'ue": 2.0}' + newline
    path.write_bytes((whole + tail).encode())
    connector = FilesConnector({"path": str(path)})
    ids, cursor = drain(connector)
    assert ids == [0, 1, 2, 3]
    with open(path, "ab") as file:
        file.write(rest.encode())
    assert drain(connector, cursor)[0] == [4]


def test_a_record_is_complete_only_outside_quotes(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b'id,note\r1,"one\rtwo"\r2,"three\n')  # the writer stopped inside a quoted value
    connector = FilesConnector({"path": str(path)})
    first = connector.fetch(None, 10)
    assert first.table.to_pydict() == {"id": [1], "note": ["one\rtwo"]}
    with open(path, "ab") as file:
        file.write(b'four, ""five"""\r\n')
    rest = connector.fetch(first.cursor, 10)
    assert rest.table.to_pydict() == {"id": [2], "note": ['three\nfour, "five"']}


def test_quoted_line_endings_in_a_file_larger_than_arrows_blocks(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("id,note\n" + "".join(f'{i},"line\nbreak {i}"\n' for i in range(60_000)))
    assert path.stat().st_size > 1 << 20  # Arrow reads in 1 MiB blocks cut at line ends
    batch = FilesConnector({"path": str(path)}).fetch(None, 100_000)
    assert batch.num_rows == 60_000 and batch.table.column("note")[59_999].as_py() == "line\nbreak 59999"


@pytest.mark.parametrize(("data", "complete"), [
    (b'a,b\n1,"x\n', b"a,b\n"),
    (b'a,b\n1,x"y\n2,3\n', b'a,b\n1,x"y\n2,3\n'),  # a quote inside an unquoted field is a character
    (b'a,b\n1,"x""\n', b"a,b\n"),  # a doubled quote does not close the value
    (b'a,b\n1,"x"""\n', b'a,b\n1,"x"""\n'),
    (b'a,b\n1,"q"r\n5', b'a,b\n1,"q"r\n'),  # after the closing quote the field goes on unquoted
    (b'\xef\xbb\xbf"a",b\n"1\r2",3\r"4', b'\xef\xbb\xbf"a",b\n"1\r2",3\r'),
    (b'\xef\xbb\xbf"a', b""),
    (b"a,b\r\n1,2\r", b"a,b\r\n1,2\r"),  # the LF of a CRLF may follow: the record is complete already
])
def test_complete_csv_records(data: bytes, complete: bytes) -> None:
    assert complete_csv(data) == complete


def test_complete_csv_agrees_with_arrow_on_what_it_keeps(tmp_path: Path) -> None:
    """Every prefix of a tricky file: the records kept parse to the same first rows as the whole file."""
    import pyarrow.csv as pa_csv

    data = b'id,note\n1,"a,b"\r\n2,"c\r\nd"\r3,x"y\n4,"""q"""\n5,"e\n\nf"\n'
    whole = pa_csv.read_csv(pa.BufferReader(data)).to_pylist()
    for cut in range(len(data) + 1):
        kept = complete_csv(data[:cut])
        rows = pa_csv.read_csv(pa.BufferReader(kept)).to_pylist() if kept else []
        assert rows == whole[:len(rows)], cut


# ---- a column that changes type mid-stream, outside the daemon ----------------------------------


def test_reference_capture_over_a_column_that_changes_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`driftd reference capture --rows` reads batches as the daemon does: the text is left out, and said."""
    import yaml
    from click.testing import CliRunner

    from monitor.cli import main
    from tests.helpers import sample_table, write_csv

    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "a.csv", sample_table(60, seed=1))
    later = sample_table(60, seed=2, start_id=60)
    text = ["oops" if i % 20 == 0 else str(value) for i, value in enumerate(later.column("a").to_pylist())]
    write_csv(tmp_path / "data" / "b.csv", later.set_column(1, "a", pa.array(text)))
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump({
        "storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"},
        "monitors": [{"name": "orders", "source": {"type": "files", "options": {"path": "data", "max_files": 10}},
                      "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 50},
                      "reference": {"first_rows": 100}, "max_rows": 50}]}))
    result = CliRunner().invoke(main, ["reference", "capture", "orders", "--rows", "100", "-c", "driftd.yaml"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "stored reference version 1 (100 rows, capture, active)" in result.stdout
    assert "monitor 'orders': feature 'a': 2 value(s) are not numbers (e.g. 'oops'): left out" in result.stderr

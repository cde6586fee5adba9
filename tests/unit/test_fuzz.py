"""Property tests (hypothesis): the config loader and the ``files`` reader fail only with their own errors."""

from __future__ import annotations

import os

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, build_config, load_config
from monitor.connector import ConnectorError
from plugins.connectors.files import FilesConnector

# Under CI the examples are derandomized (the same every run, so a landing never hangs on luck);
# elsewhere each run explores new ones — run the suite locally to keep finding bugs.
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=os.environ.get("CI", "").lower() in {"1", "true", "yes"})

KEYS = st.sampled_from([
    "monitors", "storage", "server", "logging", "metrics", "name", "source", "type", "options", "path",
    "features", "numeric", "categorical", "window", "rows", "span", "timestamp", "reference", "first_rows",
    "schedule", "interval", "cron", "measures", "ks", "psi", "threshold", "drift", "share", "backend",
    "max_rows", "enabled", "url", "port", "level", "sequential", "bins", "surprise",
])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["files", "data", "5m", "0", "-1s", "${HOME}", "${NOPE_UNSET}",
                                           "${X:-1}", "*/5 * * * *", "61 * * * *", "ks", "numpy", "torch"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.integers(0, 3)), children, max_size=5),
    ),
    max_leaves=25,
)
#: monitor-shaped trees, so validation gets past the top level into the nested models
MONITORS = st.fixed_dictionaries({"monitors": st.lists(st.dictionaries(KEYS, TREES, max_size=8), max_size=2)})


@FUZZ
@given(raw=st.one_of(TREES, MONITORS))
def test_build_config_raises_only_config_error(raw: object) -> None:
    try:
        build_config(raw, "fuzz.yaml", environ={"HOME": "/home/x"})
    except ConfigError:
        pass


@FUZZ
@given(text=st.one_of(st.text(max_size=300),
                      TREES.map(lambda tree: yaml.safe_dump(tree, default_flow_style=None)),
                      st.binary(max_size=200).map(lambda data: data.decode("latin-1"))))
def test_load_config_raises_only_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_config(path, environ={})
    except ConfigError:
        pass


@FUZZ
@given(data=st.binary(max_size=300))
def test_load_config_of_random_bytes_raises_only_config_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    try:
        load_config(path, environ={})
    except ConfigError:
        pass


def _csvish() -> st.SearchStrategy[bytes]:
    """Mostly CSV-looking text (so the parser gets past the header), sometimes raw bytes."""
    cell = st.one_of(st.integers(-5, 5).map(str), st.floats(allow_nan=True).map(str),
                     st.sampled_from(["", "x", "nan", "inf", "a,b", '"q"', "true", "\xff"]))
    line = st.lists(cell, min_size=1, max_size=4).map(",".join)
    text = st.lists(line, max_size=8).map(lambda lines: "\n".join(lines) + "\n")
    return st.one_of(text.map(lambda t: t.encode("utf-8", "surrogateescape")), st.binary(max_size=200))


def _jsonish() -> st.SearchStrategy[bytes]:
    value = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=3))
    record = st.dictionaries(st.sampled_from(["a", "b", "c"]), value, max_size=3).map(json.dumps)
    lines = st.lists(st.one_of(record, st.text(max_size=10)), max_size=6).map(lambda ls: "\n".join(ls) + "\n")
    return st.one_of(lines.map(str.encode), st.binary(max_size=200))


def _parquetish() -> st.SearchStrategy[bytes]:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "c": ["x", "y", "z"]}), buffer)
    whole = buffer.getvalue()
    cut = st.integers(0, len(whole)).map(lambda n: whole[:n])
    flipped = st.tuples(st.integers(0, len(whole) - 1), st.integers(0, 255)).map(
        lambda change: whole[:change[0]] + bytes([change[1]]) + whole[change[0] + 1:])
    return st.one_of(cut, flipped, st.binary(max_size=200))


FILES = st.lists(
    st.one_of(st.tuples(st.just(".csv"), _csvish()), st.tuples(st.just(".jsonl"), _jsonish()),
              st.tuples(st.just(".parquet"), _parquetish())),
    min_size=1, max_size=3,
)


@FUZZ
@given(files=FILES, max_rows=st.integers(1, 5))
def test_files_reader_raises_only_connector_error_and_never_repeats_a_row(
        tmp_path_factory: pytest.TempPathFactory, files: list[tuple[str, bytes]], max_rows: int) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    for index, (suffix, data) in enumerate(files):
        (folder / f"part-{index}{suffix}").write_bytes(data)
    connector = FilesConnector({"path": str(folder)})
    cursor, fetched = None, 0
    try:
        for _ in range(100):
            batch = connector.fetch(cursor, max_rows)
            assert batch.num_rows <= max_rows
            if batch.num_rows == 0:
                assert batch.cursor == cursor, "an empty fetch must not move the cursor"
                break
            assert batch.cursor != cursor
            fetched += batch.num_rows
            cursor = batch.cursor
        else:
            pytest.fail("the reader never ran dry")
    except ConnectorError:
        return
    finally:
        connector.close()
    # no row repeated, none skipped: the pieces add up to each file read whole on its own
    whole = 0
    for path in sorted(folder.iterdir()):
        single = FilesConnector({"path": str(path)})
        whole += single.fetch(None, 10**9).num_rows
    assert fetched == whole
    assert connector.fetch(cursor, max_rows).num_rows == 0, "nothing comes again after the end"


# ---- the files reader: newline conventions, records written in pieces, files rewritten ---------

TEXTS = st.text(alphabet=st.sampled_from(list('ab ,"\n\r')), max_size=6).map(lambda text: "t" + text)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])
#: One version of the file: its records (text, line ending), the byte positions it is written up to
#: between fetches, and how it takes the place of the version before (ignored for the first).
VERSIONS = st.lists(
    st.tuples(st.lists(st.tuples(TEXTS, NEWLINES), max_size=6), st.lists(st.floats(0, 1), max_size=4),
              st.sampled_from(["rewrite", "replace"])),
    min_size=1, max_size=3)


def _csv_text(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(char in text for char in ',"\r\n') else text


def _file_bytes(fmt: str, first_id: int, records: list[tuple[str, str]]) -> bytes:
    if fmt == ".csv":
        lines = ["id,text\n"] + [f"{first_id + i},{_csv_text(text)}{newline}" for i, (text, newline) in
                                 enumerate(records)]
    else:
        lines = [json.dumps({"id": first_id + i, "text": text}) + newline for i, (text, newline) in enumerate(records)]
    return "".join(lines).encode()


@FUZZ
@given(fmt=st.sampled_from([".csv", ".jsonl"]), versions=VERSIONS, max_rows=st.integers(1, 5),
       restarts=st.lists(st.booleans(), min_size=20, max_size=20))
def test_files_reader_reads_each_record_once_whole_whatever_the_newlines_and_rewrites(
        tmp_path_factory: pytest.TempPathFactory, fmt: str, versions: list[Any], max_rows: int,
        restarts: list[bool]) -> None:
    """A file written in arbitrary pieces with LF, CRLF and CR endings (quoted ones too), truncated and
    rewritten or replaced between versions, fetched after every piece: every record of every version
    comes back exactly once and whole, and never a half-written one, across restarts too."""
    path = tmp_path_factory.mktemp("fuzz") / f"app{fmt}"
    path.write_bytes(b"")
    connector, cursor = FilesConnector({"path": str(path)}), None
    expected: list[tuple[int, str]] = []
    fetched: list[tuple[int, str]] = []
    fetches = 0
    for number, (records, cuts, how) in enumerate(versions):
        data = _file_bytes(fmt, 1000 * number, records)
        expected += [(1000 * number + i, text) for i, (text, _) in enumerate(records)]
        pieces = sorted({int(cut * len(data)) for cut in cuts} | {len(data)})
        written = 0
        for end in pieces:
            if written == 0 and number > 0 and how == "replace":
                staged = path.with_name(".staged")
                staged.write_bytes(data[:end])
                os.replace(staged, path)
            else:
                with open(path, "r+b" if written == 0 and number > 0 else "ab") as file:
                    if written == 0 and number > 0:
                        file.truncate(0)
                    file.write(data[written:end])
            written = end
            if restarts[fetches % len(restarts)]:
                connector.close()
                connector = FilesConnector({"path": str(path)})
            fetches += 1
            for _ in range(100):
                batch = connector.fetch(cursor, max_rows)
                if batch.num_rows == 0:
                    assert batch.cursor == cursor
                    break
                fetched += list(zip(batch.table.column("id").to_pylist(), batch.table.column("text").to_pylist()))
                cursor = json.loads(json.dumps(batch.cursor))
    connector.close()
    assert fetched == expected

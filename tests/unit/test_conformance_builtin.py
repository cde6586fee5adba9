"""The built-in files and synthetic connectors pass the plugin kit's conformance suite; its ack mode catches mistakes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable

import pytest

from monitor.connector import Batch, Connector, Cursor
from monitor.testing import check_bad_options, check_connector
from plugins.connectors.files import FilesConnector
from plugins.connectors.synthetic import SyntheticConnector
from tests.helpers import sample_table, write_csv
from tests.memory_queue import MemoryBroker, MemoryQueueConnector


class _Parts:
    """Appends rows of ``sample_table`` as three numbered CSV files, so batches span files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows = 0
        self.files = 0

    def write(self, rows: int) -> None:
        for part in (rows // 3, rows // 3, rows - 2 * (rows // 3)):
            self.files += 1
            write_csv(self.folder / f"part-{self.files:04d}.csv",
                      sample_table(part, seed=self.files, start_id=self.rows))
            self.rows += part


class _Broken(SyntheticConnector):
    """A broken connector: each batch starts ``offset`` rows away from where the last one ended."""

    offset = 0

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        batch = super().fetch(cursor if not cursor else cursor + self.offset, max_rows)
        return batch if batch.num_rows else Batch(batch.table, cursor)


def test_files_connector_passes_the_suite(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    check_connector(lambda: FilesConnector({"path": str(folder)}), _Parts(folder).write, total_rows=230)


@pytest.mark.parametrize(("offset", "problem"), [(1, "read 44 rows, expected 50"), (-1, "still returned rows")])
def test_the_suite_catches_skipped_and_repeated_rows(offset: int, problem: str) -> None:
    broken = type("Broken", (_Broken,), {"offset": offset})
    with pytest.raises(AssertionError, match=problem):
        check_connector(lambda: broken({"total_rows": 50}), total_rows=50, id_column="ts", max_rows_values=(7, 1))


@pytest.mark.parametrize("total_rows", [0, 250])
def test_synthetic_connector_passes_the_suite(total_rows: int) -> None:
    check_connector(lambda: SyntheticConnector({"seed": 3, "total_rows": total_rows, "rows_per_fetch": 60}),
                    total_rows=total_rows, id_column="ts")


def test_builtin_connectors_reject_bad_options() -> None:
    check_bad_options(FilesConnector, [
        ("path", {}),
        ("format", {"path": "x", "format": "xml"}),
        ("colums", {"path": "x", "colums": ["a"]}),
    ])
    check_bad_options(SyntheticConnector, [
        ("seed", {"seed": -1}),
        ("total_rows", {"total_rows": "many"}),
        ("shifts", {"shifts": [{"kind": "mean_shift", "feature": "nope", "start_row": 0, "amount": 1}]}),
    ])


# ---- mode="ack": a source that cannot be re-read --------------------------------------------


def _queue_connector(bugs: frozenset[str] = frozenset()) -> tuple[Callable[[], Connector], MemoryBroker]:
    broker = MemoryBroker(f"q-{uuid.uuid4().hex[:8]}")
    cls = type("Queue", (MemoryQueueConnector,), {"bugs": bugs})
    return (lambda: cls({"broker": broker.name})), broker


@pytest.mark.parametrize("total_rows", [0, 1, 60])
def test_an_acknowledging_connector_passes_the_ack_suite(total_rows: int) -> None:
    make, broker = _queue_connector()
    check_connector(make, broker.publish, total_rows=total_rows, mode="ack")
    assert broker.outstanding == 0, "the suite left messages unacknowledged"


@pytest.mark.parametrize(("bug", "problem"), [
    ("ack_on_fetch", "did not give the uncommitted rows"),    # rows fetched, never committed: gone
    ("ack_on_close", r"read \d+ rows, expected 60"),          # closing gave away uncommitted rows
    ("keep_redeliveries", "rows repeated"),                   # committed rows came back after a crash
    ("own_position", "did not give the uncommitted rows"),   # a retried fetch skipped what it handed out
])
def test_the_ack_suite_catches_lost_and_repeated_rows(bug: str, problem: str) -> None:
    make, broker = _queue_connector(frozenset({bug}))
    with pytest.raises(AssertionError, match=problem):
        check_connector(make, broker.publish, total_rows=60, mode="ack")


def test_the_ack_suite_needs_a_source_it_writes() -> None:
    make, _ = _queue_connector()
    with pytest.raises(AssertionError, match="needs write_rows"):
        check_connector(make, total_rows=5, mode="ack")

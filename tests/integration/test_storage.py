"""Storage on embedded SQLite and on the real PostgreSQL server: schema, migrations, the tick path."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from monitor.store.migrate import SchemaOutOfDate, current_revision, head_revision, upgrade
from monitor.store.schema import Base, DriftEvent, Result, SourceCursor, Window
from monitor.domain.records import NewReference
from monitor.store import Store, StoreError
from tests.helpers import make_runner, monitor_config, sample_table, write_csv


def test_migrations_build_exactly_the_models(db_url: str) -> None:
    store = Store(db_url)
    upgrade(store.engine)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    assert current_revision(store.engine) == head_revision()


def test_out_of_date_schema_is_refused_except_embedded_sqlite(db_url: str) -> None:
    store = Store(db_url)
    if store.is_sqlite:
        store.prepare()
        assert current_revision(store.engine) == head_revision()
    else:
        with pytest.raises(SchemaOutOfDate, match="driftd db upgrade"):
            store.prepare()
        upgrade(store.engine)
        store.prepare()


def test_reference_versions_keep_one_active(db_url: str) -> None:
    store = Store(db_url)
    upgrade(store.engine)
    monitor_id = store.monitor_id("m")
    assert store.monitor_id("m") == monitor_id
    for rows in (10, 20, 30):
        store.add_reference(monitor_id, NewReference(b"summary", rows, {"a": "numeric"}, "test"))
    assert [(v.version, v.active) for v in store.references("m")] == [(1, False), (2, False), (3, True)]
    store.activate_reference("m", 1)
    assert [v.active for v in store.references("m")] == [True, False, False]
    assert store.active_reference(monitor_id).rows == 10
    with pytest.raises(StoreError, match="no reference version 9"):
        store.activate_reference("m", 9)
    with pytest.raises(StoreError, match="monitor 'other' has no history"):
        store.references("other")


def test_tick_path_commits_windows_results_event_and_cursor(db_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data" / "part-1.csv", sample_table(1000, seed=1))
    write_csv(tmp_path / "data" / "part-2.csv", sample_table(1500, seed=2, shift=2.0, start_id=1000))
    runner = make_runner(monitor_config(max_rows=800), db_url)
    while runner.tick().rows_fetched:
        pass
    with runner.store.engine.connect() as connection:
        windows = connection.execute(select(Window.seq, Window.rows, Window.state).order_by(Window.seq)).all()
        results = connection.scalar(select(func.count()).select_from(Result))
        events = connection.scalar(select(func.count()).select_from(DriftEvent))
        cursor = connection.execute(select(SourceCursor.position, SourceCursor.pending_rows)).one()
    assert [(w.seq, w.rows) for w in windows] == [(1, 500), (2, 500), (3, 500)]
    assert all(w.state == "drift" for w in windows)
    assert results == 3 * 6 and events == 1
    assert cursor.position["row"] == 1500 and cursor.pending_rows == 0
    assert [w.seq for w in runner.store.windows("m", limit=2)] == [3, 2]
    assert runner.store.count_rows("m") == 1500

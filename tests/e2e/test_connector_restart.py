"""``driftd run`` stopped and started again over each connector: every row in exactly one window.

For each connector (files, sql, redis_streams, nats, mqtt) on the shared test servers: start the
real process, write rows, wait until part of them is in committed windows, stop it (SIGTERM for
some, SIGKILL for the others), write more rows while it is down, start it again and wait until
every row is in a window. The history (SQLite, read with plain SQL) must then hold windows
1..n, each of ``WINDOW`` rows whose ids (the window's timestamp column) are the next ``WINDOW``
ids: no row lost, none counted twice, none out of place.

MQTT runs with ``persistent_session`` (QoS 1, fixed client id): the broker keeps what is published
while driftd is down. Without it those messages are lost by design (see the connector's doc).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL, require_module, under_ci
from tests.e2e.conftest import Driftd, query, wait_for, write_config
from tests.helpers import sample_table, write_csv

pytestmark = pytest.mark.slow

WINDOW, MAX_ROWS = 20, 100
#: Rows written before the stop and while driftd is down: the first tick reads MAX_ROWS of FIRST,
#: driftd is stopped with the rest still in the source, and the next run's first tick reads the rest.
FIRST, SECOND = 150, 50

#: The shared servers (the same overrides as the integration tests).
POSTGRES_URL = make_url(POSTGRES_ADMIN_URL).set(database="test")
REDIS_URL = os.environ.get("DRIFTD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("DRIFTD_TEST_NATS_URL", "nats://127.0.0.1:4222")
MQTT_HOST, _, MQTT_PORT = os.environ.get("DRIFTD_TEST_MQTT", "127.0.0.1:1883").partition(":")


def _unreachable(what: str, error: BaseException) -> None:
    if under_ci():
        pytest.fail(f"{what} is required under CI: {error!r}")
    pytest.skip(f"{what} is not reachable: {type(error).__name__}: {error}")


class Source:
    """One connector's source: the monitor's ``source`` section and a way to write rows ``id, a, b, c``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.token = uuid.uuid4().hex[:12]
        self.written = 0
        self.wait_for_log: str | None = None  # a log line to wait for before rows are written

    def section(self) -> dict[str, Any]:
        raise NotImplementedError

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def write(self, count: int) -> None:
        self.write_rows(sample_table(count, seed=self.written, start_id=self.written).to_pylist())
        self.written += count

    def close(self) -> None:
        pass


class FilesSource(Source):
    def section(self) -> dict[str, Any]:
        return {"type": "files", "options": {"path": "data/*.csv"}}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        path = self.workdir / "data" / f"part-{self.written:06d}.csv"
        partial = write_csv(path.with_suffix(".partial"), pa.Table.from_pylist(rows))
        os.replace(partial, path)  # no reader sees half a file


class SqlSource(Source):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        import sqlalchemy as sa

        self.sa = sa
        self.table = f"driftd_restart_{self.token}"
        self.engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2})
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.text(f'CREATE TABLE "{self.table}" (id bigint PRIMARY KEY, '
                                           "a double precision, b double precision, c text)"))
        except Exception as error:  # noqa: BLE001
            self.engine.dispose()
            _unreachable(f"PostgreSQL at {POSTGRES_URL.render_as_string()}", error)

    def section(self) -> dict[str, Any]:
        return {"type": "sql", "options": {"url": POSTGRES_URL.render_as_string(hide_password=False),
                                           "table": self.table, "cursor_column": "id"}}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.sa.text(f'INSERT INTO "{self.table}" (id, a, b, c) VALUES (:id, :a, :b, :c)'), rows)

    def close(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(self.sa.text(f'DROP TABLE IF EXISTS "{self.table}"'))
        self.engine.dispose()


class RedisSource(Source):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        redis = require_module("redis")
        self.key = f"driftd_restart_{self.token}"
        self.client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        try:
            self.client.ping()
        except redis.RedisError as error:
            _unreachable(f"Redis at {REDIS_URL}", error)

    def section(self) -> dict[str, Any]:
        return {"type": "redis_streams", "options": {"url": REDIS_URL, "stream": self.key}}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(self.key, row)
        pipe.execute()

    def close(self) -> None:
        self.client.delete(self.key)
        self.client.close()


class NatsSource(Source):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.nats = require_module("nats")
        self.stream = f"DRIFTD_RESTART_{self.token}"
        self.subject = f"driftd.restart.{self.token}"
        try:
            self._run(lambda js: js.add_stream(name=self.stream, subjects=[f"{self.subject}.>"]))
        except Exception as error:  # noqa: BLE001
            _unreachable(f"NATS JetStream at {NATS_URL}", error)

    def _run(self, action: Callable[[Any], Any]) -> Any:
        async def main() -> Any:
            async def quiet(_error: Exception) -> None:
                pass
            nc = await self.nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False, error_cb=quiet)
            try:
                return await action(nc.jetstream())
            finally:
                await nc.close()
        return asyncio.run(main())

    def section(self) -> dict[str, Any]:
        return {"type": "nats", "options": {"servers": NATS_URL, "stream": self.stream,
                                            "subject": f"{self.subject}.readings"}}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        async def send(js: Any) -> None:
            for row in rows:
                await js.publish(f"{self.subject}.readings", json.dumps(row).encode())
        self._run(send)

    def close(self) -> None:
        self._run(lambda js: js.delete_stream(self.stream))


class MqttSource(Source):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        require_module("paho.mqtt")
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = int(MQTT_PORT or 1883)
        self.topic = f"driftd-restart/{self.token}"
        try:
            socket.create_connection((MQTT_HOST, self.port), timeout=2).close()
        except OSError as error:
            _unreachable(f"Mosquitto at {MQTT_HOST}:{self.port}", error)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{self.token}")
        self.client.connect(MQTT_HOST, self.port)
        self.client.loop_start()
        # messages are kept for the session only once it exists: wait for the first subscription
        self.wait_for_log = "subscribed to"

    def section(self) -> dict[str, Any]:
        return {"type": "mqtt", "options": {"host": MQTT_HOST, "port": self.port, "topics": [f"{self.topic}/#"],
                                            "persistent_session": True, "client_id": f"driftd-{self.token}",
                                            "session_expiry": 120}}

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        infos = [self.client.publish(f"{self.topic}/readings", json.dumps(row).encode(), qos=1) for row in rows]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def windows(db: Path) -> list[tuple[int, int, str, str]]:
    """(seq, rows, started_at, ended_at) of every committed window of monitor ``m``."""
    return query(db, "SELECT w.seq, w.rows, w.started_at, w.ended_at FROM windows w "
                     "JOIN monitors m ON m.id = w.monitor_id WHERE m.name = 'm' ORDER BY w.seq")


def rows_in_windows(db: Path) -> int:
    return sum(rows for _, rows, _, _ in windows(db))


def epoch(stored: str) -> int:
    """A stored window bound (the id column read as seconds) back as the id."""
    moment = datetime.fromisoformat(stored)
    return round((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


@pytest.mark.parametrize("kind, stop", [
    ("files", signal.SIGTERM),
    ("sql", signal.SIGKILL),
    ("redis_streams", signal.SIGKILL),
    ("nats", signal.SIGTERM),
    ("mqtt", signal.SIGTERM),
    ("mqtt", signal.SIGKILL),
], ids=["files-term", "sql-kill", "redis-kill", "nats-term", "mqtt-term", "mqtt-kill"])
def test_stop_and_start_again_counts_every_row_once(kind: str, stop: signal.Signals, tmp_path: Path,
                                                    driftd_process: Callable[..., Driftd]) -> None:
    source: Source = {"files": FilesSource, "sql": SqlSource, "redis_streams": RedisSource, "nats": NatsSource,
                      "mqtt": MqttSource}[kind](tmp_path)
    try:
        daemon = driftd_process(["--config", "driftd.yaml"])
        write_config(tmp_path / "driftd.yaml", port=daemon.port, monitors=[{
            "name": "m",
            "source": source.section(),
            "features": {"numeric": ["a", "b"], "categorical": ["c"]},
            "window": {"rows": WINDOW, "timestamp": "id"},  # ids read as seconds: each window's first and last id
            "max_rows": MAX_ROWS,
            "schedule": {"interval": "1s"},
            "reference": {"path": str(write_csv(tmp_path / "ref.csv", sample_table(300, seed=999)))},
            "measures": ["ks", "psi"],
        }])
        (tmp_path / "data").mkdir()
        db = tmp_path / "driftd.db"

        if source.wait_for_log:
            daemon.start()
            daemon.wait_log(source.wait_for_log)
            source.write(FIRST)
        else:
            source.write(FIRST)  # read by the first tick, at start
            daemon.start()
        wait_for(lambda: rows_in_windows(db) >= MAX_ROWS, 20, interval=0.05, message="the first windows",
                 process=daemon)
        daemon.signal(stop)
        assert daemon.proc.wait(15) == (0 if stop == signal.SIGTERM else -signal.SIGKILL), daemon.log()[-4000:]
        assert rows_in_windows(db) < FIRST, "stopped too late: the first rows were all read already"

        source.write(SECOND)  # while driftd is down
        daemon.start()
        total = FIRST + SECOND
        wait_for(lambda: rows_in_windows(db) >= total, 30, interval=0.1, message=f"{total} rows in windows",
                 process=daemon)
        assert daemon.terminate() == 0, daemon.log()[-4000:]

        found = windows(db)
        assert [seq for seq, *_ in found] == list(range(1, total // WINDOW + 1)), "a window is missing or twice"
        assert [(rows, epoch(start), epoch(end)) for _, rows, start, end in found] == [
            (WINDOW, first, first + WINDOW - 1) for first in range(0, total, WINDOW)], "rows lost, repeated, reordered"
        assert query(db, "SELECT pending_rows FROM cursors") == [(0,)]
        logs = daemon.all_logs()
        assert "Traceback" not in logs and "is down" not in logs, logs[-6000:]
    finally:
        source.close()

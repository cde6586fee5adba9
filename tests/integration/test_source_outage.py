"""A source server that really stops: the monitor reports it, backs off, and resumes losing nothing."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from monitor.daemon.engine import SourceDown
from monitor.store.schema import SourceCursor
from tests.conftest import require_module, under_ci
from tests.e2e.conftest import free_port
from tests.helpers import make_runner, monitor_config, sample_table, write_csv

redis = require_module("redis")


class RedisServer:
    """A private redis-server on a free port whose data survives a kill (fsync'd append-only file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Kill it without a chance to clean up."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def write(self, stream: str, first_id: int, rows: int) -> None:
        """Append rows with ids first_id.. to a stream."""
        pipe = redis.Redis(port=self.port).pipeline(transaction=False)
        for row in sample_table(rows, seed=first_id, start_id=first_id).to_pylist():
            pipe.xadd(stream, row)
        pipe.execute()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if under_ci():
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


def test_stopped_source_server_is_reported_and_resumed_without_loss(server: RedisServer, tmp_path: Path,
                                                                     sqlite_url: str) -> None:
    config = monitor_config(
        source={"type": "redis_streams", "options": {"url": f"redis://127.0.0.1:{server.port}/0", "stream": "s"}},
        reference={"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
        window={"rows": 100}, max_rows=150)
    runner = make_runner(config, sqlite_url)
    clock = [0.0]
    runner.fetcher.backoff.clock = lambda: clock[0]
    server.write("s", 0, 400)
    for _ in range(2):
        runner.tick()

    server.kill()
    with pytest.raises(SourceDown, match="monitor 'm'"):
        runner.tick()
    assert runner.metrics.snapshot("m").source_up is False
    assert runner.tick().rows_fetched == 0, "it backs off instead of hammering the dead server"

    server.start()  # same port and data directory: the 400 rows are still there
    server.write("s", 400, 600)
    clock[0] += 10
    while runner.tick().rows_fetched:
        pass
    assert runner.metrics.snapshot("m").source_up is True
    with runner.store.engine.connect() as connection:
        pending = connection.scalar(sa.select(SourceCursor.pending_rows))
    assert runner.store.count_rows("m") + pending == 1000
    assert runner.store.count_rows("m") == 1000
    runner.close()

"""A private RabbitMQ SIGKILLed and restarted under a running daemon: a classic queue and a stream.

The scenario of ``test_source_outage_servers.py`` for the ``rabbitmq`` connector, with both ways
of reading in one daemon (two monitors on one broker, so the broker starts only twice). The test
starts its own ``rabbitmq-server`` node (its own node name, ports, configuration and data
directory; the machine's shared broker on 5672 is not touched), writes persistent messages to a
durable classic queue and a stream, lets the daemon commit part of them, kills the broker's whole
process group with SIGKILL, checks that ticks fail with a SourceDown naming the monitor and the
cause while the daemon keeps running, restarts the node on the same data and port, writes more
and checks that every message lands in exactly one committed window (windows of ``WINDOW`` rows
whose first and last ids are the next ones) and that no cursor went back.

What is at stake at the kill: the classic queue holds messages driftd committed and
acknowledged, others it committed whose acknowledgement may not have been processed, others it
received but did not commit; after the restart the broker redelivers every unacknowledged one,
the connector drops those its committed cursor lists and counts the others. The stream is read
again from the committed offset. A stream created just before a SIGKILL may not come back
(RabbitMQ 3.10 registers it on disk a moment later), so the scenario reads for a while first; and
after the restart it publishes only once the stream takes a consumer again (see ``stream_ready``:
RabbitMQ 3.10 confirms and drops what is published before), then checks the stream's last offset.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from prometheus_client import generate_latest

from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.daemon.engine import SourceDown
from monitor.metrics import Metrics
from tests.conftest import require_module
from tests.e2e.conftest import free_port
from tests.helpers import sample_table, write_csv
from tests.integration.test_source_outage_servers import Server, _missing, _port_open

WINDOW = 50
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's; /usr/sbin/rabbitmq-server only switches user


def _source_up(metrics: Metrics, monitor: str) -> str:
    """The exported ``driftd_source_up`` sample of a monitor."""
    found = re.search(rf'^driftd_source_up\{{monitor="{monitor}"\}} (\S+)$', generate_latest(metrics.registry).decode(),
                      re.M)
    assert found, f"driftd_source_up of {monitor} is not exported"
    return found[1]


class RabbitServer(Server):
    """A private RabbitMQ node with its data in the test's directory."""

    name = "rabbitmq"

    def __init__(self, directory: Path, executable: str) -> None:
        super().__init__(directory)
        self.pika = require_module("pika")
        self.executable = executable
        self.node = f"driftd-test-{uuid.uuid4().hex[:8]}@localhost"
        self.dist_port = free_port()
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n", encoding="utf-8")
        (directory / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        (directory / "rabbitmq-env.conf").write_text("", encoding="utf-8")
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def command(self) -> list[str]:
        return [self.executable]

    def popen_options(self) -> dict[str, Any]:
        directory = str(self.directory)
        return {"env": {**os.environ, "HOME": directory,
                        "RABBITMQ_CONF_ENV_FILE": f"{directory}/rabbitmq-env.conf",
                        "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                        "RABBITMQ_DIST_PORT": str(self.dist_port),
                        "RABBITMQ_MNESIA_BASE": f"{directory}/mnesia", "RABBITMQ_LOG_BASE": f"{directory}/log",
                        "RABBITMQ_CONFIG_FILE": f"{directory}/rabbitmq",
                        "RABBITMQ_ENABLED_PLUGINS_FILE": f"{directory}/enabled_plugins",
                        "ERL_EPMD_ADDRESS": "127.0.0.1"}}

    def ready(self) -> bool:
        if not _port_open(self.port):
            return False
        try:
            self._connect().close()
            return True
        except Exception:  # noqa: BLE001 - refused, or still booting
            return False

    def log(self) -> str:
        logs = self.directory / "log" / f"{self.node}.log"
        return super().log() + (logs.read_text(errors="replace")[-3000:] if logs.exists() else "")

    def _connect(self) -> Any:
        parameters = self.pika.URLParameters(self.url)
        parameters.connection_attempts, parameters.socket_timeout = 1, 2
        return self.pika.BlockingConnection(parameters)

    def declare(self, queue: str, stream: bool) -> None:
        connection = self._connect()
        arguments = {"x-queue-type": "stream"} if stream else {}
        connection.channel().queue_declare(queue, durable=True, arguments=arguments)
        connection.close()

    def stream_ready(self, queue: str, timeout: float = 30) -> None:
        """Wait until the stream takes a consumer: its writer runs again after a restart.

        RabbitMQ 3.10 confirms messages published to a stream whose writer has not started yet
        after a restart, and they are never stored: a publisher must wait for this (seen here: the
        600 rows written right after the restart were confirmed, and the writer then started with
        its last offset 399).
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                connection = self._connect()
                channel = connection.channel()
                channel.basic_qos(prefetch_count=1)
                channel.basic_consume(queue, lambda *_args: None, arguments={"x-stream-offset": "next"})
                connection.close()
                return
            except self.pika.exceptions.AMQPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stream_tail(self, queue: str) -> int:
        """The highest offset the stream holds (-1 when empty), read from its last chunk."""
        connection = self._connect()
        channel = connection.channel()
        channel.basic_qos(prefetch_count=1)
        offsets = [-1]
        channel.basic_consume(queue, lambda _ch, _method, properties, _body: offsets.append(
            properties.headers["x-stream-offset"]), arguments={"x-stream-offset": "last"})
        connection.process_data_events(time_limit=1)
        connection.close()
        return max(offsets)

    def write(self, queues: list[str], first_id: int, rows: int, timeout: float = 30,
              streams: tuple[str, ...] = ()) -> None:
        """Publish persistent rows with ids first_id.. to each queue, each confirmed; retried while a queue is
        not back yet; each of ``streams`` is first waited for (``stream_ready``) and then checked to hold them."""
        deadline = time.monotonic() + timeout
        for queue in queues:
            if queue in streams:
                self.stream_ready(queue, timeout)
            while True:
                try:
                    connection = self._connect()
                    channel = connection.channel()
                    channel.confirm_delivery()
                    for row in sample_table(rows, seed=first_id, start_id=first_id).to_pylist():
                        channel.basic_publish("", queue, json.dumps(row).encode(),
                                              self.pika.BasicProperties(delivery_mode=2))
                    connection.close()
                    break
                except self.pika.exceptions.AMQPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)  # nothing of a failed batch is kept: publish it whole again
            if queue in streams:  # offsets count messages from 0 here (one writer, nothing removed)
                assert self.stream_tail(queue) == first_id + rows - 1, "the broker lost confirmed messages"


@pytest.fixture
def rabbitmq(tmp_path: Path) -> Iterator[RabbitServer]:
    executable = SERVER if os.access(SERVER, os.X_OK) else shutil.which("rabbitmq-server")
    if executable is None:
        _missing("rabbitmq-server is not installed")
    server = RabbitServer(tmp_path, executable)
    try:
        server.start(timeout=120)
        yield server
    finally:
        server.kill()


def test_rabbitmq_killed_under_a_classic_queue_and_a_stream(rabbitmq: RabbitServer, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    queues = {"queue": f"driftd-q-{uuid.uuid4().hex[:8]}", "stream": f"driftd-s-{uuid.uuid4().hex[:8]}"}
    for name, queue in queues.items():
        rabbitmq.declare(queue, stream=name == "stream")
    reference = str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"},
        "server": {"enabled": False},
        "monitors": [{
            "name": name,
            "source": {"type": "rabbitmq", "options": {"url": rabbitmq.url, "queue": queue, "stream": name == "stream",
                                                       "prefetch": 120, "timeout": 5}},
            "features": {"numeric": ["a", "b"], "categorical": ["c"]},
            "window": {"rows": WINDOW, "timestamp": "id"},  # ids as seconds: each window's first/last id
            "reference": {"path": reference}, "measures": ["ks", "psi"], "max_rows": 130, "fetch_timeout": "20s",
        } for name, queue in queues.items()],
    }, "test", environ={})
    caplog.set_level(logging.INFO)
    daemon = Daemon(config)
    daemon.prepare()
    clock = [0.0]
    for runner in daemon.runners.values():
        runner.fetcher.backoff.clock = lambda: clock[0]
    cursors: dict[str, list[Any]] = {name: [] for name in queues}

    def tick() -> dict[str, Any]:
        outcomes = daemon.tick_all()  # a failure is returned, never raised: the daemon keeps running
        for name, outcome in outcomes.items():
            if not isinstance(outcome, Exception):
                cursors[name].append(daemon.store.load_progress(daemon.runners[name].monitor_id, recent=0).position)
        return outcomes

    def committed(name: str) -> int:
        return daemon.store.count_rows(name)

    before, after = 400, 600
    try:
        assert all(outcome.rows_fetched == 0 for outcome in tick().values())
        rabbitmq.write(list(queues.values()), 0, before, streams=(queues["stream"],))
        deadline = time.monotonic() + 30
        while min(committed(name) for name in queues) < 2 * WINDOW:
            assert time.monotonic() < deadline, "the rows written before the kill were not read"
            assert not any(isinstance(outcome, Exception) for outcome in tick().values())
        assert all(committed(name) < before for name in queues)
        assert all(_source_up(daemon.metrics, name) == "1.0" for name in queues)
        time.sleep(2)  # see the docstring: the stream must be on disk before the kill

        rabbitmq.kill()
        deadline = time.monotonic() + 10
        while any(runner.connector._link is not None and runner.connector._link.alive  # noqa: SLF001
                  for runner in daemon.runners.values()):
            assert time.monotonic() < deadline, "the connectors did not notice the broker went"
            time.sleep(0.02)
        outcomes = tick()
        for name in queues:
            message = str(outcomes[name])
            assert isinstance(outcomes[name], SourceDown), message
            assert message.startswith(f"monitor {name!r}: source 'rabbitmq': "), message
            assert re.search(r"(?i)connection was lost|refused", message), message
            assert _source_up(daemon.metrics, name) == "0.0"
        assert all(outcome.rows_fetched == 0 for outcome in tick().values()), "it backs off, not hammering"
        clock[0] += 1000
        assert all("Connection refused" in str(outcome) for outcome in tick().values()), "retried: still down"

        rabbitmq.start(timeout=120)  # same port, node name and data directory
        rabbitmq.write(list(queues.values()), before, after, streams=(queues["stream"],))
        total = before + after
        deadline = time.monotonic() + 60
        while min(committed(name) for name in queues) < total:
            assert time.monotonic() < deadline, (
                f"{[committed(name) for name in queues]} of {total} rows in windows\n{rabbitmq.log()}")
            clock[0] += 1000  # no need to wait out the backoff
            tick()
            time.sleep(0.05)
        for _ in range(3):  # nothing more arrives (e.g. a redelivered message counted again)
            assert all(outcome.rows_fetched == 0 for outcome in tick().values())

        for name in queues:
            runner = daemon.runners[name]
            progress = daemon.store.load_progress(runner.monitor_id, recent=0)
            windows = sorted(daemon.store.windows(name, limit=10_000), key=lambda w: w.seq)
            assert committed(name) == total and progress.pending is None, name
            assert [w.seq for w in windows] == list(range(1, total // WINDOW + 1)), f"{name}: a window missing or twice"
            assert [(w.rows, round(w.started_at.timestamp()), round(w.ended_at.timestamp())) for w in windows] == [
                (WINDOW, first, first + WINDOW - 1) for first in range(0, total, WINDOW)], f"{name}: rows lost or twice"
            assert _source_up(daemon.metrics, name) == "1.0"
            records = [r.getMessage() for r in caplog.records if f"monitor {name}: source" in r.getMessage()]
            assert sum("is down" in line for line in records) == 1, records
            assert sum("is back" in line for line in records) == 1, records
        seqs = [cursor["seq"] if cursor else 0 for cursor in cursors["queue"]]
        offsets = [-1 if cursor is None else cursor for cursor in cursors["stream"]]
        assert seqs == sorted(seqs) and offsets == sorted(offsets), "a committed cursor went back"
    finally:
        daemon.stop()

"""``driftd run`` SIGKILLed mid-stream over RabbitMQ: a classic queue and a stream, every message counted once.

Two monitors in one real daemon process read the shared broker (127.0.0.1:5672): ``queue`` a durable
classic queue (acknowledged after each commit), ``stream`` a stream (read by offset). Messages are
published while it runs and while it is down; it is SIGKILLed twice, at different moments of
its 0.2 s tick (right after a commit and part-way to the next one), so that it dies holding
messages it received but did not commit, and (for the queue) messages it committed but whose
acknowledgement may not have reached the broker. At the end every message published is in exactly
one window or among the committed pending rows: windows 1..n, each of ``WINDOW`` rows whose ids
(the window's timestamp column) are the next ``WINDOW`` ids, and nothing left unacknowledged.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import require_module, under_ci
from tests.e2e.conftest import Driftd, query, wait_for, write_config
from tests.helpers import sample_table, write_csv

pytestmark = pytest.mark.slow

URL = os.environ.get("DRIFTD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
WINDOW, MAX_ROWS = 50, 70
MONITORS = ("queue", "stream")


class Queues:
    """A classic queue and a stream with unique names, rows ``id, a, b, c`` published to both."""

    def __init__(self) -> None:
        self.pika = require_module("pika")
        try:
            self.connection = self.pika.BlockingConnection(self.pika.URLParameters(URL))
        except self.pika.exceptions.AMQPError as error:
            if under_ci():
                pytest.fail(f"RabbitMQ at {URL} is required under CI: {error!r}")
            pytest.skip(f"RabbitMQ is not reachable: {error!r}")
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        token = uuid.uuid4().hex[:10]
        self.names = {"queue": f"driftd-crash-q-{token}", "stream": f"driftd-crash-s-{token}"}
        self.channel.queue_declare(self.names["queue"], durable=True)
        self.channel.queue_declare(self.names["stream"], durable=True, arguments={"x-queue-type": "stream"})
        self.published = 0

    def publish(self, rows: int) -> None:
        for row in sample_table(rows, seed=self.published, start_id=self.published).to_pylist():
            body = json.dumps(row).encode()
            for name in self.names.values():
                self.channel.basic_publish("", name, body, self.pika.BasicProperties(delivery_mode=2))
        self.published += rows

    def waiting(self) -> int:
        """Messages of the classic queue not acknowledged yet (ready or held by a consumer)."""
        connection = self.pika.BlockingConnection(self.pika.URLParameters(URL))
        try:
            return connection.channel().queue_declare(self.names["queue"], passive=True).method.message_count
        finally:
            connection.close()

    def close(self) -> None:
        for name in self.names.values():
            self.channel.queue_delete(name)
        self.connection.close()


@pytest.fixture
def queues() -> Iterator[Queues]:
    created = Queues()
    yield created
    created.close()


def progress(db: Path, monitor: str) -> tuple[int, int, int]:
    """(windows, rows in windows, pending rows) of a monitor."""
    [(count, rows)] = query(db, "SELECT count(*), coalesce(sum(w.rows), 0) FROM windows w JOIN monitors m "
                                "ON m.id = w.monitor_id WHERE m.name = ?", monitor) or [(0, 0)]
    pending = query(db, "SELECT c.pending_rows FROM cursors c JOIN monitors m ON m.id = c.monitor_id "
                        "WHERE m.name = ?", monitor)
    return count, rows, pending[0][0] if pending else 0


def epoch(stored: str) -> int:
    moment = datetime.fromisoformat(stored)
    return round((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def test_sigkill_mid_stream_counts_every_message_once(tmp_path: Path, queues: Queues,
                                                      driftd_process: Callable[..., Driftd]) -> None:
    daemon = driftd_process(["--config", "driftd.yaml"])
    reference = str(write_csv(tmp_path / "ref.csv", sample_table(300, seed=999)))
    write_config(tmp_path / "driftd.yaml", port=daemon.port, monitors=[{
        "name": name,
        "source": {"type": "rabbitmq", "options": {"url": URL, "queue": queues.names[name],
                                                   "stream": name == "stream", "prefetch": 200}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "window": {"rows": WINDOW, "timestamp": "id"},  # ids read as seconds: each window's first and last id
        "max_rows": MAX_ROWS,
        "schedule": {"interval": "0.2s"},
        "reference": {"path": reference},
        "measures": ["ks", "psi"],
    } for name in MONITORS])
    db = tmp_path / "driftd.db"

    def windows_at_least(count: int) -> bool:
        return all(progress(db, name)[0] >= count for name in MONITORS)

    queues.publish(600)
    for kill_at, delay in ((2, 0.0), (7, 0.13)):
        daemon.start()
        wait_for(lambda: windows_at_least(kill_at), 40, interval=0.02, message=f"{kill_at} windows", process=daemon)
        time.sleep(delay)
        daemon.signal(signal.SIGKILL)
        assert daemon.proc is not None and daemon.proc.wait(10) == -signal.SIGKILL
        for name in MONITORS:
            _, rows, pending = progress(db, name)
            assert rows + pending <= queues.published, f"{name}: more rows counted than published"
            assert rows < queues.published, f"{name}: killed too late, everything was read"
        queues.publish(200)  # while driftd is down

    daemon.start()
    daemon.wait_log("running 2 monitor(s)")
    queues.publish(260)
    total = queues.published  # 1260: 25 windows and 10 pending rows
    full = total // WINDOW * WINDOW
    wait_for(lambda: all(progress(db, name)[1:] == (full, total - full) for name in MONITORS), 60,
             message=f"{full} rows in windows and {total - full} pending", process=daemon)
    time.sleep(0.5)  # a few more ticks: nothing more may arrive
    assert daemon.terminate() == 0, daemon.log()[-4000:]

    for name in MONITORS:
        windows, rows, pending = progress(db, name)
        assert rows + pending == total, f"{name}: {rows} rows in windows + {pending} pending != {total} published"
        found = query(db, "SELECT w.seq, w.rows, w.started_at, w.ended_at FROM windows w JOIN monitors m "
                          "ON m.id = w.monitor_id WHERE m.name = ? ORDER BY w.seq", name)
        assert [seq for seq, *_ in found] == list(range(1, windows + 1)), f"{name}: a window is missing or twice"
        assert [(count, epoch(start), epoch(end)) for _, count, start, end in found] == [
            (WINDOW, first, first + WINDOW - 1) for first in range(0, full, WINDOW)], f"{name}: rows lost or twice"
    assert queues.waiting() == 0, "messages left unacknowledged (they would be redelivered)"
    logs = daemon.all_logs()
    assert "Traceback" not in logs and "is down" not in logs, logs[-6000:]

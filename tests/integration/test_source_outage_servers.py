"""Source servers that really stop: PostgreSQL, NATS JetStream and Mosquitto, each private to the test.

The scenario of ``test_source_outage.py`` (Redis) for the ``sql``, ``nats`` and ``mqtt``
connectors. Each test starts its own server on a free port with its data in a temporary
directory, runs a monitor in a ``Daemon`` (ticked by hand), writes rows, kills the server's whole
process group with SIGKILL, checks that ticks fail with a SourceDown naming the monitor and the
cause while the daemon keeps running (``driftd_source_up 0``, one log line for the outage, backoff
between tries), restarts the server on the same port and data directory, writes more rows and
checks that the ticks resume: every row written lands in exactly one committed window (the
``id`` column is the window's timestamp, so each window's first and last id are in the history),
no window is stored twice, and the committed cursor never goes back.

How the servers are run:

* PostgreSQL: ``initdb`` then ``postgres`` from the newest ``/usr/lib/postgresql/*/bin`` (else
  from PATH), trust authentication, on 127.0.0.1 only (no Unix socket). PostgreSQL refuses to run as
  root, so as root both run as the ``postgres`` user (``subprocess.Popen(user=...)``) in a
  directory made with ``tempfile.mkdtemp`` and given to that user (pytest's own temporary
  directories are private to root). ``fsync=off`` only saves time: a SIGKILL does not lose the
  kernel's page cache, so crash recovery from the WAL still runs on restart.
* NATS: ``nats-server -js -sd DIR`` (file storage).
* Mosquitto: a configuration file with persistence on and ``autosave_on_changes`` after every
  change, so a SIGKILL loses no message the broker accepted more than a moment before.

What MQTT guarantees here (``persistent_session``, QoS 1, ``clean_start=false``): a message
cannot be published while the broker is down (there is nobody to accept it; a publisher can only
keep it and publish it after the restart, which is then an ordinary publish). What the test
checks is the broker-side promise: messages the broker accepted before the kill -- those already
delivered to driftd but not yet acknowledged (acknowledgement waits for the commit) and those
still queued at the broker for driftd's session because of the receive maximum (``max_buffer``)
-- are all counted, exactly once, after the broker comes back from its persistence file.
"""

from __future__ import annotations

import asyncio
import glob
import json
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, NoReturn

import pytest
from prometheus_client import generate_latest

from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.daemon.engine import MonitorRunner, SourceDown
from monitor.metrics import Metrics
from tests.conftest import require_module, under_ci
from tests.e2e.conftest import free_port
from tests.helpers import sample_table, write_csv

WINDOW = 50


def _missing(reason: str) -> NoReturn:
    """Fail under CI, where every server must be there; skip elsewhere."""
    if under_ci():
        pytest.fail(f"{reason}: required under CI")
    pytest.skip(reason)


class Server:
    """A server process on a free port, started in its own process group.

    ``kill`` SIGKILLs the whole group (a crash: no shutdown, no cleanup); ``start`` again reuses
    the port and the data directory.
    """

    name = "server"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        return {}

    def ready(self) -> bool:
        """Whether the server answers."""
        raise NotImplementedError

    def log(self) -> str:
        return "".join((self.directory / f"{self.name}-{n}.log").read_text(errors="replace")
                       for n in range(1, self.starts + 1) if (self.directory / f"{self.name}-{n}.log").exists())

    def start(self, timeout: float = 30) -> None:
        """Start it and wait until it answers."""
        self.starts += 1
        with open(self.directory / f"{self.name}-{self.starts}.log", "wb") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, **self.popen_options())
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not answer within {timeout:g}s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server and everything it started."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        time.sleep(0.05)  # let the children of the group go too (PostgreSQL's backends)


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


# ---- PostgreSQL --------------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: the newest /usr/lib/postgresql/*/bin, else PATH."""
    def version(folder: str) -> int:
        number = Path(folder).parent.name
        return int(number) if number.isdigit() else 0

    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(Path(folder) / tool, os.X_OK) for tool in ("initdb", "postgres")):
            return Path(folder)
    postgres, initdb = shutil.which("postgres"), shutil.which("initdb")
    if postgres and initdb and Path(postgres).resolve().parent == Path(initdb).resolve().parent:
        return Path(postgres).resolve().parent
    return None


class PostgresServer(Server):
    """A private PostgreSQL cluster; as root it runs as the ``postgres`` user."""

    name = "postgres"

    def __init__(self, directory: Path, binaries: Path, owner: pwd.struct_passwd | None) -> None:
        super().__init__(directory)
        self.binaries = binaries
        self.owner = owner
        self.data = directory / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run([str(binaries / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C", "--no-sync"], check=True, capture_output=True,
                       **self.popen_options())

    def popen_options(self) -> dict[str, Any]:
        if self.owner is None:
            return {}
        return {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": [], "cwd": self.directory,
                "env": {**os.environ, "HOME": self.owner.pw_dir, "USER": self.owner.pw_name}}

    def command(self) -> list[str]:
        return [str(self.binaries / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "fsync=off", "-c", "max_connections=20", "-c", "shared_buffers=16MB"]

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
                               connect_timeout=2, autocommit=True)

    def ready(self) -> bool:
        try:
            with self.connect() as connection:
                connection.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - refused, or "the database system is starting up"
            return False

    def write(self, first_id: int, rows: int) -> None:
        """Insert rows with ids first_id.. (the table is created on first use)."""
        table = sample_table(rows, seed=first_id, start_id=first_id).to_pylist()
        with self.connect() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS events "
                               "(id bigint PRIMARY KEY, a double precision, b double precision, c text)")
            with connection.cursor() as cursor:
                cursor.executemany("INSERT INTO events (id, a, b, c) VALUES (%(id)s, %(a)s, %(b)s, %(c)s)", table)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    require_module("psycopg")
    binaries = _postgres_bin()
    if binaries is None:
        _missing("PostgreSQL's initdb and postgres are not installed (looked in /usr/lib/postgresql/*/bin and PATH)")
    owner = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            _missing("running PostgreSQL as root needs a 'postgres' user, and there is none")
        directory = Path(tempfile.mkdtemp(prefix="driftd-pg-"))
        os.chown(directory, owner.pw_uid, owner.pw_gid)
    else:
        directory = tmp_path / "pg"
        directory.mkdir()
    server = PostgresServer(directory, binaries, owner)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        if owner is not None:
            shutil.rmtree(directory, ignore_errors=True)


# ---- NATS JetStream ---------------------------------------------------------------------------


class NatsServer(Server):
    """A private nats-server with JetStream on file storage; one stream ``EVENTS`` on ``events.>``."""

    name = "nats"
    stream = "EVENTS"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.nats = require_module("nats")
        self.url = f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return ["nats-server", "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.directory / "js")]

    def _run(self, action: Callable[[Any], Any]) -> Any:
        async def main() -> Any:
            async def quiet(_error: Exception) -> None:
                pass
            nc = await self.nats.connect(self.url, connect_timeout=1, max_reconnect_attempts=0,
                                         allow_reconnect=False, error_cb=quiet)
            try:
                return await action(nc.jetstream(timeout=2))
            finally:
                await nc.close()
        return asyncio.run(main())

    def ready(self) -> bool:
        if not _port_open(self.port):
            return False
        try:
            self._run(lambda js: js.account_info())  # JetStream is up, not just the port
            return True
        except Exception:  # noqa: BLE001
            return False

    def create_stream(self) -> None:
        from nats.js.api import StorageType

        self._run(lambda js: js.add_stream(name=self.stream, subjects=["events.>"], storage=StorageType.FILE))

    def write(self, first_id: int, rows: int) -> None:
        """Publish rows with ids first_id.., each acknowledged (stored) by the stream."""
        async def send(js: Any) -> None:
            for row in sample_table(rows, seed=first_id, start_id=first_id).to_pylist():
                await js.publish("events.readings", json.dumps(row).encode())
        self._run(send)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    if shutil.which("nats-server") is None:
        _missing("nats-server is not installed")
    server = NatsServer(tmp_path)
    try:
        server.start()
        server.create_stream()
        yield server
    finally:
        server.kill()


# ---- Mosquitto ----------------------------------------------------------------------------------


class MosquittoServer(Server):
    """A private Mosquitto with persistence saved after every change."""

    name = "mosquitto"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.config = directory / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true", "persistence true",
                 f"persistence_location {directory}/", "autosave_on_changes true", "autosave_interval 1",
                 "log_type error", "log_type warning"]
        if os.geteuid() == 0:
            lines.append("user root")  # else Mosquitto drops to 'mosquitto', who cannot write the directory
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.publisher: Any = None

    def command(self) -> list[str]:
        return ["mosquitto", "-c", str(self.config)]

    def ready(self) -> bool:
        return _port_open(self.port)

    def write(self, first_id: int, rows: int) -> None:
        """Publish rows with ids first_id.. at QoS 1 and wait until the broker acknowledged each."""
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:12]}")
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        try:
            infos = [client.publish("driftd/events", json.dumps(row).encode(), qos=1)
                     for row in sample_table(rows, seed=first_id, start_id=first_id).to_pylist()]
            for info in infos:
                info.wait_for_publish(10)
                assert info.is_published()
        finally:
            client.disconnect()
            client.loop_stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    require_module("paho.mqtt")
    if shutil.which("mosquitto") is None:
        _missing("mosquitto is not installed")
    server = MosquittoServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.kill()


# ---- the scenario -------------------------------------------------------------------------------


def _source_up(metrics: Metrics) -> str:
    """The exported ``driftd_source_up`` sample of monitor m."""
    found = re.search(r'^driftd_source_up\{monitor="m"\} (\S+)$', generate_latest(metrics.registry).decode(), re.M)
    assert found, "driftd_source_up{monitor=\"m\"} is not exported"
    return found[1]


def outage(tmp_path: Path, source: dict[str, Any], server: Server, write: Callable[[int, int], None],
           cause: str, caplog: pytest.LogCaptureFixture, cursor_key: Callable[[Any], Any],
           before: int, after: int, max_rows: int, in_memory: int = 0,
           settle: Callable[[MonitorRunner], None] = lambda runner: None) -> None:
    """Write ``before`` rows, tick, kill the server, tick, restart it, write ``after`` rows, drain.

    ``in_memory``: rows the connector still holds in memory at the kill (MQTT) and hands out before
    it reports the outage; with none, the first tick after the kill must fail.
    ``settle`` runs after the first rows are written, before the ticks that read them.
    """
    config = build_config({
        "storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"},
        "server": {"enabled": False},
        "monitors": [{
            "name": "m", "source": source,
            "features": {"numeric": ["a", "b"], "categorical": ["c"]},
            "window": {"rows": WINDOW, "timestamp": "id"},  # ids as seconds: each window's first/last id
            "reference": {"path": str(write_csv(tmp_path / "reference.csv", sample_table(500, seed=99)))},
            "measures": ["ks", "psi"], "max_rows": max_rows, "fetch_timeout": "20s",
        }],
    }, "test", environ={})
    caplog.set_level(logging.INFO)
    daemon = Daemon(config)
    daemon.prepare()
    runner = daemon.runners["m"]
    clock = [0.0]
    runner.fetcher.backoff.clock = lambda: clock[0]
    cursors: list[Any] = []

    def tick() -> Any:
        outcome = daemon.tick_all()["m"]  # a failure is returned, never raised: the daemon keeps running
        if not isinstance(outcome, Exception):
            cursors.append(daemon.store.load_progress(runner.monitor_id, recent=0).position)
        return outcome

    def committed() -> int:
        return daemon.store.count_rows("m")

    try:
        assert tick().rows_fetched == 0  # connects (MQTT: subscribes, so the session exists from here on)
        write(0, before)
        settle(runner)
        deadline = time.monotonic() + 20
        while committed() < 2 * WINDOW:  # part of the rows are committed, the rest wait in the source
            assert time.monotonic() < deadline, "the rows written before the kill were not read"
            outcome = tick()
            assert not isinstance(outcome, Exception), outcome
            time.sleep(0.02)
        assert _source_up(daemon.metrics) == "1.0"
        assert committed() < before
        time.sleep(0.3)  # Mosquitto saves its in-memory database on the next turn of its loop

        server.kill()
        served = 0
        for _ in range(100):
            outcome = tick()
            if isinstance(outcome, Exception):
                break
            assert in_memory, "a tick after the kill succeeded"
            served += outcome.rows_fetched
            time.sleep(0.02)
        assert isinstance(outcome, SourceDown), outcome
        assert served == in_memory, "rows held in memory at the kill"
        message = str(outcome)
        assert message.startswith(f"monitor 'm': source {source['type']!r}: "), message
        assert re.search(cause, message), message
        assert _source_up(daemon.metrics) == "0.0"
        waiting = tick()
        assert not isinstance(waiting, Exception) and waiting.rows_fetched == 0, "it backs off, not hammering"
        clock[0] += 1000
        assert isinstance(tick(), SourceDown), "retried after the delay: still down"

        server.start()  # same port, same data directory
        write(before, after)
        total = before + after
        deadline = time.monotonic() + 40
        while committed() < total:
            assert time.monotonic() < deadline, (f"{committed()} of {total} rows in windows\n"
                                                 f"{server.log()[-3000:]}")
            clock[0] += 1000  # no need to wait out the backoff
            tick()
            time.sleep(0.05)
        for _ in range(3):  # nothing more arrives (e.g. a redelivered message counted again)
            time.sleep(0.1)
            assert tick().rows_fetched == 0
        assert _source_up(daemon.metrics) == "1.0"

        down = [r for r in caplog.records if r.levelno >= logging.ERROR and "monitor m: source" in r.getMessage()]
        assert len(down) == 1 and re.search(cause, down[0].getMessage()), [r.getMessage() for r in down]
        assert sum("monitor m: source" in r.getMessage() and "is back" in r.getMessage() for r in caplog.records) == 1

        progress = daemon.store.load_progress(runner.monitor_id, recent=0)
        windows = sorted(daemon.store.windows("m", limit=10_000), key=lambda w: w.seq)
        assert committed() == total and progress.pending is None
        assert [w.seq for w in windows] == list(range(1, total // WINDOW + 1)), "a window is missing or stored twice"
        assert [(w.rows, round(w.started_at.timestamp()), round(w.ended_at.timestamp())) for w in windows] == [
            (WINDOW, first, first + WINDOW - 1) for first in range(0, total, WINDOW)], "rows lost, repeated, reordered"
        keys = [cursor_key(cursor) for cursor in cursors]
        assert keys == sorted(keys), f"the committed cursor went back: {cursors}"
    finally:
        daemon.stop()


def test_postgres_killed_under_the_sql_connector(postgres: PostgresServer, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    postgres.write(0, 0)  # the table exists before the first tick
    source = {"type": "sql", "options": {"url": postgres.url, "table": "events", "cursor_column": "id"}}
    outage(tmp_path, source, postgres, postgres.write, cause="(?i)refused", caplog=caplog,
           cursor_key=lambda cursor: -1 if cursor is None else cursor["value"], before=400, after=600, max_rows=130)


def test_nats_server_killed_under_the_nats_connector(nats_server: NatsServer, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    source = {"type": "nats", "options": {"servers": nats_server.url, "stream": nats_server.stream, "timeout": 2}}
    outage(tmp_path, source, nats_server, nats_server.write, cause="(?i)refused", caplog=caplog,
           cursor_key=lambda cursor: cursor or 0, before=400, after=600, max_rows=130)


def test_mosquitto_killed_under_a_persistent_mqtt_session(mosquitto: MosquittoServer, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Accepted before the kill, delivered but unacknowledged or still queued at the broker: each counted once.

    The broker sends at most ``max_buffer`` (120) of the 300 messages before any acknowledgement;
    one tick commits 100 of them and the broker is killed before the next fetch acknowledges
    them. So at the kill the broker holds 120 delivered, unacknowledged messages (100 committed,
    20 only in driftd's memory) and 180 queued for the session. After the restart it redelivers
    the 120 (recognised and skipped: all were committed meanwhile) and sends the 180.
    """
    options = {"host": "127.0.0.1", "port": mosquitto.port, "topics": ["driftd/#"], "qos": 1,
               "persistent_session": True, "client_id": f"driftd-{uuid.uuid4().hex[:12]}", "session_expiry": 600,
               "max_buffer": 120, "timeout": 5}

    def delivered(runner: MonitorRunner) -> None:
        deadline = time.monotonic() + 10
        while runner.connector.buffered < 120:
            assert time.monotonic() < deadline, f"only {runner.connector.buffered} messages delivered"
            time.sleep(0.01)
        time.sleep(0.1)
        assert runner.connector.buffered == 120, "the broker ignored the receive maximum"

    outage(tmp_path, {"type": "mqtt", "options": options}, mosquitto, mosquitto.write,
           cause="(?i)disconnected", caplog=caplog, cursor_key=lambda cursor: -1 if cursor is None else cursor["seq"],
           before=300, after=200, max_rows=100, in_memory=20, settle=delivered)

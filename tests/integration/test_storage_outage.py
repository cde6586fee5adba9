"""The storage database goes away (its port cut by a proxy the test controls) and comes back."""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.http.face import HttpFace
from monitor.store.migrate import upgrade
from monitor.store import Store
from tests.helpers import sample_table, write_csv

pytestmark = pytest.mark.postgres


class Proxy:
    """A TCP proxy on a free loopback port to PostgreSQL; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self.open = False
        for sock in self.sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def restore(self) -> None:
        """Accept and forward connections again."""
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_storage_outage_keeps_the_daemon_up_and_loses_nothing(tmp_path: Path, postgres_url: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    upgrade(Store(postgres_url).engine)
    url = make_url(postgres_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    for part in range(6):
        write_csv(tmp_path / "data" / f"part-{part}.csv", sample_table(500, seed=part, start_id=part * 500))
    config = build_config({"storage": {"url": through_proxy}, "server": {"enabled": False}, "monitors": [{
        "name": "m", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 250},
        "reference": {"first_rows": 500}, "max_rows": 400, "measures": ["ks", "psi"]}]}, "test", environ={})
    daemon = Daemon(config)
    daemon.prepare()
    caplog.set_level(logging.INFO)
    try:
        for _ in range(3):
            daemon.tick_all()
        before = daemon.store.count_rows("m")

        proxy.cut()
        runner = daemon.runners["m"]
        now = [0.0]
        runner.error_backoff.clock = lambda: now[0]
        outcomes = [daemon.tick_all()["m"] for _ in range(4)]
        assert isinstance(outcomes[0], Exception)
        assert all(outcome.rows_fetched == 0 for outcome in outcomes[1:]), "it backs off instead of retrying each tick"
        now[0] += 2
        assert isinstance(daemon.tick_all()["m"], Exception), "retried after the delay, still down"
        assert runner.error_backoff.failures == 2
        assert any("database unreachable" in reason for reason in daemon.readiness())
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and "monitor 'm'" in r.getMessage()]
        assert 1 <= len(errors) <= 2, [r.getMessage() for r in errors]  # once per change of cause, not per tick

        proxy.restore()
        now[0] += 10
        while daemon.tick_all()["m"].rows_fetched:
            pass
        assert not any("database" in reason for reason in daemon.readiness())
        assert any("recovered" in r.getMessage() for r in caplog.records)
        progress = daemon.store.load_progress(daemon.runners["m"].monitor_id, recent=0)
        assert daemon.store.count_rows("m") == 2500 > before and progress.pending is None
        windows = daemon.store.windows("m", limit=100)
        assert sorted(w.seq for w in windows) == list(range(1, 11)), "no window lost or counted twice"
    finally:
        daemon.stop()
        proxy.close()


def test_a_daemon_started_while_the_database_is_down_serves_readyz_and_starts_when_it_returns(
        tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    import httpx

    upgrade(Store(postgres_url).engine)
    url = make_url(postgres_url)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.cut()
    through_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    write_csv(tmp_path / "data" / "part-0.csv", sample_table(1000, seed=0))
    config = build_config({"storage": {"url": through_proxy}, "server": {"port": 0}, "monitors": [{
        "name": "m", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 250},
        "reference": {"first_rows": 500}, "schedule": {"interval": "1s"}}]}, "test", environ={})
    daemon = Daemon(config)
    http = HttpFace.attach(daemon)
    stop = threading.Event()
    caplog.set_level(logging.INFO)
    worker = threading.Thread(target=lambda: daemon.prepare_when_reachable(stop) and daemon.start())
    worker.start()
    try:
        for _ in range(100):
            if http.server is not None:
                break
            threading.Event().wait(0.1)
        assert http.server is not None, "HTTP is served while the database is down"
        base = f"http://127.0.0.1:{http.port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and "database unreachable" in ready.text
        assert worker.is_alive() and not daemon.runners, "no monitor runs before the database answers"
        assert sum("storage unreachable" in r.getMessage() for r in caplog.records) == 1
        for _ in range(3):  # the API: 503 JSON with the reason, not 500 text with a traceback per request
            answer = httpx.get(f"{base}/api/v1/monitors")
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/json"
            assert answer.json()["error"].startswith("database unavailable: OperationalError")
        assert sum("API: database unavailable" in r.getMessage() for r in caplog.records) == 1
        assert not any(r.exc_info for r in caplog.records if r.name.startswith(("uvicorn", "driftd.api")))
        assert "postgres@" not in caplog.text or url.password is None  # the URL's password is never logged

        proxy.restore()
        worker.join(90)  # the backoff's first delays are 1, 2, 4 s
        assert not worker.is_alive()
        for _ in range(100):
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
            threading.Event().wait(0.2)
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert "m" in daemon.runners
        assert any("storage is reachable again" in r.getMessage() for r in caplog.records)
        assert httpx.get(f"{base}/api/v1/monitors").status_code == 200
        assert any("API: the database answers again" in r.getMessage() for r in caplog.records)
    finally:
        stop.set()
        worker.join(30)
        daemon.stop()
        proxy.close()

"""``driftd run --workers N``: worker processes share the monitors through PostgreSQL leases; SQLite refuses them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select, update

from monitor.store import Store
from monitor.store.migrate import upgrade
from monitor.store.schema import Lease, Window
from tests.e2e.conftest import DRIFTD, Driftd, driftd_env, wait_for
from tests.integration.test_replicas import MONITORS, _config, _exactly_once, _write_data


def _two_free_ports() -> int:
    """A port p such that p and p + 1 are free on 127.0.0.1 now."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no two consecutive free ports")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sqlite_refuses_workers_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'd.db'}"}}), encoding="utf-8")
    done = subprocess.run([*DRIFTD, "run", "-c", str(path), "--workers", "2"], env=driftd_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "driftd: error: --workers 2: SQLite serves a single replica; workers share the monitors through "
        "PostgreSQL leases (set storage.url to a PostgreSQL database, or run without --workers)"]


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_share_the_monitors_once_survive_a_kill_and_stop_together(tmp_path: Path,
                                                                               postgres_url: str) -> None:
    rows = 6000
    _write_data(tmp_path, rows)
    upgrade(Store(postgres_url).engine)
    port = _two_free_ports()
    config = _config(tmp_path, postgres_url, lease="2s", interval="0.2s")
    config["server"] = {"port": port}
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    (tmp_path / "run").mkdir()
    parent = Driftd(tmp_path / "run", ["-c", str(path), "--workers", "2"], port)
    store = Store(postgres_url)

    def windows() -> int:
        with store.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Window)))

    def worker_pids() -> set[int]:
        return {int(owner.split(":")[1]) for owner in store.lease_owners().values()}

    try:
        parent.start()
        assert parent.proc is not None
        wait_for(lambda: len(worker_pids()) == 2, 90, message="both workers holding leases", process=parent)
        pids = worker_pids()
        assert parent.proc.pid not in pids, "the parent evaluates nothing"
        for offset in (0, 1):  # worker i serves HTTP on server.port + i
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{port + offset}/healthz", timeout=2).status_code == 200,
                     30, message=f"worker {offset}'s /healthz", process=parent)
        parent.signal(signal.SIGHUP)  # forwarded: each worker reloads the configuration
        wait_for(lambda: parent.log().count("reloaded the configuration") == 2, 30, message="both workers reloading",
                 process=parent)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        parent.wait_log(f"(pid {victim}) died (exit -9)", 30)
        wait_for(lambda: len(worker_pids() - pids) == 1, 60, message="the restarted worker holding a lease",
                 process=parent)
        wait_for(lambda: windows() == len(MONITORS) * rows // 100, 120, message="every window evaluated",
                 process=parent)
        _exactly_once(postgres_url, rows)
        workers = worker_pids() - {victim}
        assert parent.terminate(30) == 0
        assert not any(_alive(pid) for pid in workers), "SIGTERM to the parent ends every worker"
    finally:
        parent.kill()
        with store.engine.begin() as connection:
            connection.execute(update(Lease).values(owner="test-cleanup"))
        store.close()

"""Helpers for the end-to-end tests: ``driftd`` as a real process, each in its own directory and port."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import yaml

#: ``python -m monitor.cli`` with the interpreter running the tests (the venv's).
DRIFTD = [sys.executable, "-m", "monitor.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def driftd_env(**extra: str) -> dict[str, str]:
    """The environment for a driftd process: unbuffered, no config or overrides inherited."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DRIFTD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one ``driftd`` command to completion."""
    return subprocess.run([*DRIFTD, *args], cwd=cwd, env=driftd_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def write_config(path: Path, port: int, monitors: list[dict[str, Any]], db: Path | None = None,
                 level: str = "INFO") -> Path:
    """A YAML configuration file with the given monitors, a SQLite history and the port."""
    config = {
        "storage": {"url": f"sqlite:///{db or path.parent / 'driftd.db'}"},
        "server": {"port": port},
        "logging": {"level": level},
        "monitors": monitors,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a SQLite history (an absent file or table reads as no rows)."""
    if not db.exists():
        return []
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return connection.execute(sql, params).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise
    finally:
        connection.close()


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.2,
              message: str = "condition", process: "Driftd | None" = None) -> Any:
    """Poll ``condition`` until it returns something truthy; fail with the process log on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.proc is not None and process.proc.poll() is not None:
            pytest.fail(f"driftd exited with {process.proc.returncode} while waiting for {message}\n"
                        f"{process.log()}")
        if time.monotonic() > deadline:
            tail = f"\n--- driftd log ---\n{process.log()[-6000:]}" if process is not None else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {message}{tail}")
        time.sleep(interval)


class Driftd:
    """One ``driftd run`` process; its stdout and stderr go to a log file in its directory."""

    def __init__(self, cwd: Path, args: list[str], port: int, **env: str) -> None:
        self.cwd = cwd
        self.args = args
        self.port = port
        self.env = driftd_env(**env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.log_path = cwd / "driftd-0.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Driftd":
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        self.log_path = self.cwd / f"driftd-{self.runs}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([*DRIFTD, "run", *self.args], cwd=self.cwd, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        """This run's output so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def all_logs(self) -> str:
        return "".join((self.cwd / f"driftd-{run}.log").read_text(errors="replace")
                       for run in range(1, self.runs + 1) if (self.cwd / f"driftd-{run}.log").exists())

    def wait_log(self, text: str, timeout: float = 30) -> str:
        """Wait until the log holds ``text``; returns the log."""
        wait_for(lambda: text in self.log(), timeout, message=f"log line {text!r}", process=self)
        return self.log()

    def get(self, path: str, timeout: float = 5) -> httpx.Response:
        return httpx.get(self.url + path, timeout=timeout)

    def wait_http(self, timeout: float = 30) -> None:
        def up() -> bool:
            try:
                return self.get("/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, timeout, interval=0.1, message="/healthz", process=self)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def terminate(self, timeout: float = 15) -> int:
        """SIGTERM, then wait; fails the test (after killing it) if it does not exit in time."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"driftd did not exit within {timeout}s of SIGTERM\n{self.log()[-6000:]}")

    def kill(self) -> None:
        """SIGKILL the process (and anything it started) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)


@pytest.fixture
def driftd_process(tmp_path: Path) -> Iterator[Callable[..., Driftd]]:
    """A factory of ``driftd run`` processes in ``tmp_path``; every one is killed at teardown."""
    started: list[Driftd] = []

    def make(args: list[str] | None = None, port: int | None = None, cwd: Path | None = None,
             **env: str) -> Driftd:
        process = Driftd(cwd or tmp_path, args or [], port or free_port(), **env)
        started.append(process)
        return process

    try:
        yield make
    finally:
        for process in started:
            process.kill()

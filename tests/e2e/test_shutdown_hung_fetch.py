"""SIGTERM ends ``driftd run`` within a bound shorter than the systemd unit's stop timeout, even while a
connector's fetch blocks forever (a plugin connector that sleeps and never returns)."""

from __future__ import annotations

import re
import signal
import textwrap
import time
from pathlib import Path

from tests.e2e.conftest import Driftd, free_port, query, write_config
from tests.helpers import sample_table, write_csv

ROOT = Path(__file__).resolve().parents[2]
#: SIGTERM to exit, at most: well inside the shipped unit's TimeoutStopSec (systemd SIGKILLs after it).
BOUND = 20.0

SLEEPER = """\
import time

import pyarrow as pa

from monitor.plugin import Batch, Connector, hookimpl


class Sleeper(Connector):
    \"\"\"Its first fetch returns rows; every later one blocks forever (a source that hangs).\"\"\"

    def fetch(self, cursor, max_rows):
        if cursor is None:
            return Batch(pa.table({"a": [float(i % 7) for i in range(100)]}), 100)
        print("sleeper: fetch blocks forever", flush=True)
        while True:
            time.sleep(3600)


@hookimpl
def driftd_connectors():
    return {"sleeper": Sleeper}
"""


def _stop_timeout() -> float:
    unit = (ROOT / "deploy" / "systemd" / "driftd.service").read_text(encoding="utf-8")
    return float(re.search(r"^TimeoutStopSec=(\d+)", unit, re.MULTILINE).group(1))


def _install(site: Path) -> None:
    site.mkdir()
    info = site / "driftd_sleeper-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: driftd-sleeper\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[driftd]\nsleeper = driftd_sleeper\n")
    (site / "driftd_sleeper.py").write_text(textwrap.dedent(SLEEPER))


def test_sigterm_ends_the_daemon_while_a_fetch_hangs_forever(tmp_path: Path) -> None:
    assert BOUND < _stop_timeout() / 2
    _install(tmp_path / "site")
    reference = write_csv(tmp_path / "ref.csv", sample_table(300, seed=1).drop_columns(["id"]))
    monitor = {"name": "hangs", "source": {"type": "sleeper"}, "features": {"numeric": ["a"]},
               "window": {"rows": 50}, "reference": {"path": str(reference)}, "measures": ["ks"],
               "schedule": {"interval": "0.2s"}}
    # a second, healthy monitor shows the daemon otherwise works up to the signal
    files = tmp_path / "live"
    write_csv(files / "a.csv", sample_table(200, seed=2))
    healthy = {"name": "healthy", "source": {"type": "files", "options": {"path": str(files)}},
               "features": {"numeric": ["a"]}, "window": {"rows": 100}, "reference": {"path": str(reference)},
               "measures": ["ks"], "schedule": {"interval": "0.2s"}}
    config = write_config(tmp_path / "driftd.yaml", free_port(), [monitor, healthy])
    daemon = Driftd(tmp_path, ["-c", str(config)], int(re.search(r"port: (\d+)", config.read_text()).group(1)),
                    PYTHONPATH=f"{tmp_path / 'site'}:{ROOT}")
    try:
        daemon.start()
        daemon.wait_log("sleeper: fetch blocks forever", timeout=60)
        time.sleep(1.0)  # the tick is now waiting on the hung fetch
        windows = query(tmp_path / "driftd.db", "SELECT COUNT(*) FROM windows")[0][0]
        assert windows >= 2, daemon.log()  # both monitors evaluated windows before the source hung
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.proc.wait(BOUND + 10) if daemon.proc else None
        took = time.monotonic() - started
    finally:
        daemon.kill()
    log = daemon.log()
    print(f"SIGTERM to exit with a hung fetch: {took:.1f}s (bound {BOUND:g}s, TimeoutStopSec {_stop_timeout():g}s)")
    assert took < BOUND, f"SIGTERM took {took:.1f}s\n{log[-4000:]}"
    assert code == 0, log[-4000:]
    assert "stopped" in log
    assert "monitor hangs: a call into its connector has not returned" in log, log[-4000:]

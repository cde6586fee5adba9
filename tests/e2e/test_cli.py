"""The ``driftd`` commands as a user runs them: exit codes, messages, and what they leave in SQLite."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.store.migrate import head_revision
from tests.e2e.conftest import query, run_cli, wait_for, write_config

pytestmark = pytest.mark.slow


def write_csv(path: Path, rows: int, seed: int, a_mean: float = 0.0, a_values: str | None = None) -> Path:
    """``id, a, b, c`` rows; ``a_values`` replaces every value of ``a`` (e.g. "" or "nan")."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id,a,b,c"]
    for i in range(rows):
        a = a_values if a_values is not None else f"{rng.gauss(a_mean, 1):.6f}"
        lines.append(f"{i},{a},{rng.gauss(5, 2):.6f},{rng.choice('xyz')}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def files_monitor(name: str = "orders", path: str = "data", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "files", "options": {"path": path}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "window": {"rows": 500},
        "reference": {"path": "ref.csv"},
        **extra,
    }


def config_file(tmp_path: Path, monitors: list[dict[str, Any]], name: str = "driftd.yaml", port: int = 0,
                db: str = "driftd.db") -> Path:
    return write_config(tmp_path / name, port=port, monitors=monitors, db=tmp_path / db)


# ---- config validate -------------------------------------------------------------------------


def test_config_validate_accepts_a_good_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "data" / "live.csv", 100, seed=1)
    path = config_file(tmp_path, [files_monitor()])
    done = run_cli(["config", "validate", str(path)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout and "1 monitor" in done.stdout


@pytest.mark.parametrize(("change", "expected"), [
    ({"window": {"rows": -5}}, ["orders", "window.rows"]),
    ({"schedule": {"interval": "soon"}}, ["orders", "schedule.interval"]),
    ({"surprise": 1}, ["orders", "surprise"]),
    ({"source": {"type": "kafkaa", "options": {}}}, ["orders", "kafkaa"]),
    ({"measures": ["ks", "no_such_measure"]}, ["orders", "no_such_measure"]),
    ({"source": {"type": "files", "options": {"path": "data", "bogus": 1}}}, ["orders", "bogus"]),
], ids=["bad-value", "bad-duration", "unknown-key", "unknown-connector", "unknown-measure", "bad-option"])
def test_config_validate_names_file_monitor_and_key(tmp_path: Path, change: dict[str, Any],
                                                    expected: list[str]) -> None:
    path = config_file(tmp_path, [files_monitor(**change)], name="bad.yaml")
    done = run_cli(["config", "validate", str(path)], tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    for word in [str(path), *expected]:
        assert word in done.stderr, f"{word!r} not in {done.stderr!r}"


# ---- check ------------------------------------------------------------------------------------


def test_check_exit_codes(tmp_path: Path) -> None:
    write_csv(tmp_path / "ref.csv", 5000, seed=100)
    write_csv(tmp_path / "same" / "live.csv", 2000, seed=101)
    write_csv(tmp_path / "shifted" / "live.csv", 2000, seed=102, a_mean=1.5)
    config_file(tmp_path, [files_monitor(path="same")], name="same.yaml", db="same.db")
    done = run_cli(["check", "-c", "same.yaml"], tmp_path)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "orders: ok (4 new window(s))" in done.stdout

    config_file(tmp_path, [files_monitor(path="shifted")], name="shifted.yaml", db="shifted.db")
    done = run_cli(["check", "-c", "shifted.yaml"], tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "orders: drift" in done.stdout

    config_file(tmp_path, [files_monitor(name="lost", path="no-such-dir")], name="missing.yaml", db="missing.db")
    done = run_cli(["check", "-c", "missing.yaml"], tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "lost" in done.stdout and "no-such-dir" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


def test_nan_column_is_reported_and_the_other_features_are_measured(tmp_path: Path) -> None:
    write_csv(tmp_path / "ref.csv", 3000, seed=200)
    write_csv(tmp_path / "data" / "part-1.csv", 500, seed=201, a_values="")     # empty cells
    write_csv(tmp_path / "data" / "part-2.csv", 500, seed=202, a_values="nan")  # "nan" strings
    write_csv(tmp_path / "data" / "part-3.csv", 500, seed=203)                  # a is back
    config_file(tmp_path, [files_monitor(name="holes")])
    done = run_cli(["check", "-c", "driftd.yaml"], tmp_path)
    assert done.returncode in (0, 1), (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line and "'a'" in line]
    assert len(warnings) == 2, done.stderr
    assert all("holes" in line for line in warnings)

    db = tmp_path / "driftd.db"
    windows = query(db, "SELECT id, seq, missing_features FROM windows ORDER BY seq")
    assert [(seq, json.loads(missing)) for _, seq, missing in windows] == [(1, ["a"]), (2, ["a"]), (3, [])]
    for window_id, seq, _ in windows:
        features = {feature for (feature,) in query(db, "SELECT DISTINCT feature FROM results "
                                                        "WHERE window_id = ?", window_id)}
        assert features == ({"b", "c"} if seq < 3 else {"a", "b", "c"}), (seq, features)


# ---- plugins, references, db ------------------------------------------------------------------


def test_plugins_lists_the_builtin_connectors(tmp_path: Path) -> None:
    done = run_cli(["plugins"], tmp_path)
    assert done.returncode == 0, done.stderr
    connectors = [line for line in done.stdout.splitlines() if line.strip().startswith("connectors:")]
    listed = {name.strip() for line in connectors for name in line.split(":", 1)[1].split(",")}
    assert {"synthetic", "files"} <= listed, done.stdout


def test_reference_capture_list_activate(tmp_path: Path) -> None:
    write_csv(tmp_path / "ref.csv", 1000, seed=300)
    write_csv(tmp_path / "data" / "live.csv", 1000, seed=301)
    new_ref = write_csv(tmp_path / "newer.csv", 800, seed=302)
    config_file(tmp_path, [files_monitor()])
    assert run_cli(["check", "-c", "driftd.yaml"], tmp_path).returncode in (0, 1)  # stores v1 from ref.csv

    done = run_cli(["reference", "capture", "orders", "--from", str(new_ref), "-c", "driftd.yaml"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "version 2" in done.stdout

    def versions() -> list[tuple[bool, str, str]]:
        listed = run_cli(["reference", "list", "orders", "-c", "driftd.yaml"], tmp_path)
        assert listed.returncode == 0, listed.stderr
        return [(line.startswith("*"), line[1:].split()[0], line) for line in listed.stdout.splitlines()]

    listed = versions()
    assert [(active, version) for active, version, _ in listed] == [(False, "v1"), (True, "v2")], listed
    assert "800 rows" in listed[1][2]

    done = run_cli(["reference", "activate", "orders", "1", "-c", "driftd.yaml"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert [(active, version) for active, version, _ in versions()] == [(True, "v1"), (False, "v2")]

    done = run_cli(["reference", "activate", "orders", "7", "-c", "driftd.yaml"], tmp_path)
    assert done.returncode == 2 and "7" in done.stderr


def test_db_upgrade_on_a_fresh_file(tmp_path: Path) -> None:
    done = run_cli(["db", "upgrade"], tmp_path, DRIFTD_STORAGE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    assert done.returncode == 0, done.stderr
    assert head_revision() in done.stdout and "fresh.db" in done.stdout, done.stdout
    assert query(tmp_path / "fresh.db", "SELECT version_num FROM alembic_version") == [(head_revision(),)]


# ---- run --------------------------------------------------------------------------------------


def test_run_with_a_bad_config_exits_2_quickly(tmp_path: Path) -> None:
    path = config_file(tmp_path, [files_monitor(window={"rows": 0})], name="bad.yaml")
    started = time.monotonic()
    done = run_cli(["run", "-c", str(path)], tmp_path, timeout=20)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert time.monotonic() - started < 15
    assert str(path) in done.stderr and "window.rows" in done.stderr and "orders" in done.stderr
    assert "Traceback" not in done.stderr


def test_vanished_source_is_isolated(tmp_path: Path, driftd_process) -> None:
    write_csv(tmp_path / "ref.csv", 2000, seed=400)
    write_csv(tmp_path / "feed" / "part-1.csv", 1000, seed=401)
    daemon = driftd_process(["-c", "driftd.yaml"])
    config_file(tmp_path, port=daemon.port, monitors=[
        files_monitor(name="vanishing", path="feed", schedule={"interval": "0.2s"}),
        {
            "name": "steady",
            "source": {"type": "synthetic", "options": {"seed": 1, "rows_per_fetch": 200}},
            "features": {"numeric": ["temperature", "voltage"], "categorical": ["site"]},
            "window": {"rows": 200},
            "reference": {"first_rows": 400},
            "schedule": {"interval": "0.2s"},
        },
    ])
    db = tmp_path / "driftd.db"

    def windows(monitor: str) -> int:
        found = query(db, "SELECT count(*) FROM windows w JOIN monitors m ON m.id = w.monitor_id "
                          "WHERE m.name = ?", monitor)  # [] until the schema exists
        return found[0][0] if found else 0

    daemon.start()
    wait_for(lambda: windows("vanishing") == 2 and windows("steady") >= 2, 30,
             message="windows of both monitors", process=daemon)
    shutil.rmtree(tmp_path / "feed")
    daemon.wait_log("vanishing", timeout=10)
    line = wait_for(lambda: next((line for line in daemon.log().splitlines()
                                  if "ERROR" in line and "vanishing" in line), None),
                    10, message="an error naming the monitor", process=daemon)
    assert "feed" in line, line

    before = windows("steady")
    wait_for(lambda: windows("steady") >= before + 3, 20, message="steady keeps evaluating", process=daemon)
    assert daemon.get("/healthz").status_code == 200
    assert daemon.proc.poll() is None
    assert windows("vanishing") == 2
    # logged once per change of cause, not every tick
    assert sum("vanishing" in line and "ERROR" in line for line in daemon.log().splitlines()) == 1, daemon.log()
    metrics = daemon.get("/metrics").text
    assert 'driftd_source_up{monitor="vanishing"} 0.0' in metrics
    assert 'driftd_source_up{monitor="steady"} 1.0' in metrics
    assert daemon.terminate() == 0, daemon.log()
    assert "Traceback" not in daemon.log()


def test_unreachable_database_and_unknown_monitor_are_one_line_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'driftd.db'}"
    done = run_cli(["run"], tmp_path, timeout=20, DRIFTD_STORAGE_URL=url, DRIFTD_SERVER_PORT="0")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert f"driftd: error: {url}: OperationalError" in done.stderr, done.stderr

    done = run_cli(["history", "nobody"], tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "'nobody'" in done.stderr and "Traceback" not in done.stderr

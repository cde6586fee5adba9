"""A new user's first hour: a missing driver, a database that goes away, a monitor broken by its
reference, unmeasured features, and the small things (``-c``, ``--limit``, ``/api/v1``, typos)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from monitor.cli import main
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.http.api import build_api
from monitor.http.server import API_PREFIX, create_app
from monitor.plugins import PluginManager
from monitor.store import Store
from tests.helpers import sample_table, write_csv
from tests.unit.test_api import make_daemon


def metric(daemon: Daemon, name: str, monitor: str) -> float | None:
    from prometheus_client import generate_latest

    for family in text_string_to_metric_families(generate_latest(daemon.metrics.registry).decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("monitor") == monitor:
                return sample.value
    return None


@pytest.fixture
def api_daemon(tmp_path: Path) -> Iterator[Daemon]:
    (tmp_path / "db").mkdir()
    daemon = make_daemon(f"sqlite:///{tmp_path / 'db' / 'driftd.db'}", tmp_path / "data")
    yield daemon
    daemon.stop()


def client_for(daemon: Daemon) -> TestClient:
    return TestClient(create_app(daemon.metrics, daemon.readiness, api=build_api(daemon)))


# ---- the API -----------------------------------------------------------------------------------


def test_api_v1_answers_an_index_of_its_endpoints(api_daemon: Daemon) -> None:
    client = client_for(api_daemon)
    for path in (API_PREFIX, API_PREFIX + "/"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        paths = {(e["method"], e["path"]) for e in answer.json()["endpoints"]}
        assert ("GET", "/api/v1/monitors/{name}/windows") in paths
        assert ("POST", "/api/v1/monitors/{name}/check") in paths
        assert all(e["summary"] for e in answer.json()["endpoints"])


def test_api_answers_503_json_while_the_database_is_gone_and_logs_once_per_change(
        api_daemon: Daemon, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = client_for(api_daemon)
    caplog.set_level(logging.INFO)
    api_daemon.store.engine.dispose()
    (tmp_path / "db").rename(tmp_path / "db-away")  # every new connection fails: "unable to open database file"
    try:
        for path in ("/monitors", "/monitors/m", "/monitors/m/windows", "/monitors/m/events"):
            answer = client.get(API_PREFIX + path)
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/json", answer.text
            assert answer.json()["error"].startswith("database unavailable: OperationalError: unable to open")
    finally:
        (tmp_path / "db-away").rename(tmp_path / "db")
    assert client.get(API_PREFIX + "/monitors").status_code == 200
    api_lines = [r for r in caplog.records if r.name == "driftd.api"]
    assert [r.getMessage().split(":")[1].strip() for r in api_lines] == ["database unavailable",
                                                                          "the database answers again"]
    assert not any(r.exc_info for r in caplog.records), "no traceback per request"


def test_an_unexpected_failure_is_a_500_json_logged_once(api_daemon: Daemon, caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_daemon.store, "overview", lambda name: 1 / 0)
    client = client_for(api_daemon)
    for _ in range(3):
        answer = client.get(API_PREFIX + "/monitors/m")
        assert answer.status_code == 500 and answer.json() == {"error": "internal error: ZeroDivisionError: "
                                                                         "division by zero"}
    assert sum(1 for r in caplog.records if r.exc_info) == 1


# ---- a monitor that cannot evaluate shows why ---------------------------------------------------


def _files_monitor(name: str, folder: Path, **changes: Any) -> dict[str, Any]:
    return {"name": name, "source": {"type": "files", "options": {"path": str(folder)}},
            "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 500},
            "schedule": {"interval": "1h"}, **changes}


def test_a_monitor_broken_by_its_reference_shows_the_error_in_the_api_and_as_a_metric(tmp_path: Path) -> None:
    write_csv(tmp_path / "data" / "part.csv", sample_table(1500, seed=1))
    reference = tmp_path / "reference.csv"
    config = build_config({"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "monitors": [
        _files_monitor("missing-file", tmp_path / "data", reference={"path": str(reference)}),
        _files_monitor("misspelt", tmp_path / "data", reference={"path": str(tmp_path / "data" / "part.csv")},
                       features={"numeric": ["a", "bb"]}),
        _files_monitor("no-plugin", tmp_path / "data", source={"type": "kafka"}),
    ]}, "test", environ={})
    daemon = Daemon(config, PluginManager(load_entry_points=False))
    daemon.prepare()
    try:
        daemon.tick_all()
        client = client_for(daemon)
        monitors = {m["name"]: m for m in client.get(API_PREFIX + "/monitors").json()["monitors"]}
        assert "reference.csv: file not found" in monitors["missing-file"]["error"]
        assert monitors["missing-file"]["running"]
        assert "column 'bb' is missing" in monitors["misspelt"]["error"]
        assert "unknown connector type 'kafka'" in monitors["no-plugin"]["error"]
        assert not monitors["no-plugin"]["running"]
        for name in ("missing-file", "misspelt", "no-plugin"):
            assert metric(daemon, "driftd_monitor_error", name) == 1.0, name

        write_csv(reference, sample_table(1000, seed=2))  # the operator puts the file in place
        daemon.trigger("missing-file", retry_now=True)
        assert client.get(API_PREFIX + "/monitors/missing-file").json()["error"] is None
        assert metric(daemon, "driftd_monitor_error", "missing-file") == 0.0
    finally:
        daemon.stop()


def test_the_page_shows_a_monitors_error() -> None:
    from monitor.http.page import asset

    script = asset("app.js").decode()
    assert 'role: "alert", "data-error": "monitor"' in script and "monitor.error" in script


# ---- the command line ------------------------------------------------------------------------


@pytest.fixture
def history_config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    renamed = sample_table(1000, seed=2, start_id=1000).rename_columns(["id", "a", "bee", "c"])
    write_csv(data / "part-2.csv", renamed)
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "monitors": [
        _files_monitor("m", data, reference={"first_rows": 1000}, max_rows=500)]}))
    return path


def test_history_lists_the_features_a_window_could_not_measure(history_config: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["check", "-c", str(history_config)]).exit_code in (0, 1)
    result = runner.invoke(main, ["history", "-c", str(history_config), "m"])
    assert result.exit_code == 0, result.output
    assert result.output.count("not measured: b") == 2, result.output


def test_history_limit_must_be_positive(history_config: Path) -> None:
    result = CliRunner().invoke(main, ["history", "-c", str(history_config), "m", "--limit", "-5"])
    assert result.exit_code == 2 and "Invalid value for '--limit'" in result.output
    assert "Traceback" not in result.output and "SQL" not in result.output


def test_config_validate_takes_c_like_every_other_command(history_config: Path) -> None:
    for args in (["config", "validate", "-c", str(history_config)], ["config", "validate", str(history_config)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and "OK (1 monitor(s)" in result.output, result.output


def test_check_with_no_batches_reports_the_monitors_stored_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    write_csv(data / "part-2.csv", sample_table(1000, seed=2, shift=3.0, start_id=1000))
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "monitors": [
        _files_monitor("m", data, reference={"first_rows": 1000})]}))
    runner = CliRunner()
    assert runner.invoke(main, ["check", "-c", str(path), "--max-batches", "0"]).output.strip() == \
        "m: no windows yet (0 new window(s))"
    assert runner.invoke(main, ["check", "-c", str(path)]).exit_code == 1
    again = runner.invoke(main, ["check", "-c", str(path), "--max-batches", "0"])
    assert again.output.strip() == "m: drift (0 new window(s))" and again.exit_code == 1


COMMANDS = [["config", "validate", "{c}"], ["check", "-c", "{c}"], ["run", "-c", "{c}"], ["history", "-c", "{c}", "m"],
            ["db", "upgrade", "-c", "{c}"], ["reference", "list", "-c", "{c}", "m"], ["adaptations", "-c", "{c}"],
            ["backfill", "-c", "{c}", "m", "--from", "{c}"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command[:2]))
@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql", "postgres"])
def test_a_postgresql_url_without_its_driver_names_the_extra_from_every_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str], scheme: str) -> None:
    for module in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails: the driver is not installed
    path = tmp_path / "driftd.yaml"
    path.write_text(f"storage: {{url: '{scheme}://reader:s3cr#t@db.example/prod'}}\nmonitors: []\n")
    result = CliRunner().invoke(main, [part.replace("{c}", str(path)) for part in command])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "pip install 'driftd[postgres]'" in result.stderr, result.stderr
    assert "s3cr" not in result.output and "Traceback" not in result.output


def test_postgres_scheme_means_postgresql() -> None:
    store = Store("postgres://reader@127.0.0.1:1/prod")
    assert store.url == "postgresql://reader@127.0.0.1:1/prod" and store.engine.dialect.name == "postgresql"


def test_uvicorn_errors_go_through_the_json_formatter(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import httpx
        from starlette.applications import Starlette
        from starlette.routing import Route
        from monitor.http.server import HttpServer
        from monitor.logs import setup_logging

        async def broken(request):
            raise RuntimeError("boom in a route")

        setup_logging("INFO", "json")
        server = HttpServer(Starlette(routes=[Route("/", broken)]), "127.0.0.1", 0)
        server.start()
        print(httpx.get(f"http://127.0.0.1:{server.port}/").status_code, flush=True)
        server.stop()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.strip() == "500", done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(e["logger"].startswith("uvicorn") and "boom in a route" in e.get("exception", "") for e in entries)

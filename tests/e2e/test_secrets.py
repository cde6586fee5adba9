"""No secret appears in logs, errors, metrics or API answers, even at DEBUG and with sources down."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.e2e.conftest import Driftd, free_port, run_cli, wait_for
from tests.helpers import sample_table, write_csv

pytestmark = pytest.mark.slow

SECRETS = {
    "PG_PASSWORD": "pg-Secret-7f3a9",
    "SRC_PASSWORD": "src-Secret-91bc2",
    "HTTP_TOKEN": "http-Secret-0d4e7",
    "DRIFTD_API_TOKEN": "api-Secret-55aa1",
}


def _config(tmp_path: Path, storage_url: str, port: int) -> Path:
    data = tmp_path / "data"
    write_csv(data / "part-1.csv", sample_table(1500, seed=1))
    features = {"numeric": ["a", "b"], "categorical": ["c"]}
    common = {"features": features, "window": {"rows": 250}, "reference": {"first_rows": 1000},
              "schedule": {"interval": "0.5s"}}
    config = {
        "storage": {"url": storage_url},
        "server": {"port": port},
        "logging": {"level": "DEBUG"},
        "monitors": [
            {"name": "healthy", "source": {"type": "files", "options": {"path": str(data)}}, **common},
            {"name": "sql-down", **common, "source": {"type": "sql", "options": {
                "url": "postgresql+psycopg://reader:${SRC_PASSWORD}@127.0.0.1:1/prod",
                "table": "events", "cursor_column": "id"}}},
            {"name": "http-down", **common, "source": {"type": "http", "options": {
                "url": "http://127.0.0.1:1/rows", "cursor_field": "id",
                "auth_header": "Authorization", "auth_env": "HTTP_TOKEN"}}},
        ],
    }
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_secrets_never_leak(tmp_path: Path, postgres_url: str, driftd_process) -> None:  # noqa: ANN001
    storage = make_url(postgres_url).set(password="${PG_PASSWORD}").render_as_string(hide_password=False)
    port = free_port()
    config = _config(tmp_path, storage.replace("%24%7BPG_PASSWORD%7D", "${PG_PASSWORD}"), port)
    seen: list[str] = []

    upgrade = run_cli(["db", "upgrade", "-c", str(config)], tmp_path, **SECRETS)
    assert upgrade.returncode == 0, upgrade.stderr
    seen += [upgrade.stdout, upgrade.stderr]
    for command in (["config", "validate", str(config)], ["check", "-c", str(config), "--max-batches", "2"]):
        result = run_cli(command, tmp_path, **SECRETS)
        seen += [result.stdout, result.stderr]
    assert "sql-down: ERROR" in seen[-2] and "***" in seen[-2]

    daemon: Driftd = driftd_process(["-c", str(config)], port, **SECRETS)
    daemon.start()
    daemon.wait_http()
    daemon.wait_log("source 'sql' is down")
    daemon.wait_log("source 'http' is down")
    wait_for(lambda: "healthy" in daemon.get("/api/v1/monitors/healthy").text, 20, process=daemon)
    for path in ("/metrics", "/readyz", "/api/v1/monitors", "/api/v1/monitors/sql-down",
                 "/api/v1/monitors/http-down", "/api/v1/monitors/healthy/windows", "/api/v1/openapi.json"):
        seen.append(daemon.get(path).text)
    token = {"Authorization": f"Bearer {SECRETS['DRIFTD_API_TOKEN']}"}
    failed = httpx.post(f"{daemon.url}/api/v1/monitors/sql-down/check", headers=token, timeout=10)
    assert failed.status_code == 503
    seen.append(failed.text)
    wrong = httpx.post(f"{daemon.url}/api/v1/monitors/healthy/check",
                       headers={"Authorization": "Bearer api-Secret-guess"}, timeout=10)
    assert wrong.status_code == 401
    seen.append(wrong.text)
    assert daemon.terminate(timeout=15) == 0
    seen.append(daemon.all_logs())

    everything = "\n".join(seen)
    assert "DEBUG" in everything, "the daemon logged at DEBUG"
    for name, secret in SECRETS.items():
        assert secret not in everything, f"{name} leaked"

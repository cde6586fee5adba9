"""The alert rules and dashboards against a real Prometheus scraping a real driftd running its demo,
with a model and adapters added to the demo monitor so that its drift is adapted to as well."""

from __future__ import annotations

import math
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as parquet
import pytest
import yaml

from monitor.cli.demo import DEMO_REFERENCE_ROWS, demo_monitor
from plugins.connectors.synthetic import NUMERIC_FEATURES, SyntheticConnector
from tests.conftest import require_module, under_ci
from tests.e2e.conftest import Driftd, free_port, wait_for, write_config
from tests.helpers import write_csv
from tests.servers.http_receiver import Receiver
from tests.unit.test_deploy_files import (PROMETHEUS, RULE_TESTS, RULES, load_dashboards, load_rules,
                                          panel_targets, query_annotations, query_variables, variable_query)

pytestmark = pytest.mark.slow

MONITOR = "demo-sensors"
#: Live rows (after the reference) whose true labels the demo's label source holds.
LABELLED_ROWS = 20_000
#: The adapters of the demo monitor. Its drifted rows carry no labels and lie partly off the training
#: data's support, so the gate rejects both challengers; the command (a retraining hand-over) succeeds.
ADAPTERS = ["label_shift", "feature_alignment",
            {"type": "command", "name": "notify-pipeline", "options": {"argv": [sys.executable, "-c", "pass"]}}]
EXPECTED_RUNS = {("label_shift", "rejected"): 1, ("feature_alignment", "rejected"): 1,
                 ("notify-pipeline", "succeeded"): 1}
#: What Grafana would put in for its built-in variables on a short time range.
BUILTINS = {"$__rate_interval": "30s", "$__interval": "30s", "$__range": "5m"}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"`{name}` is not installed (Debian package `prometheus`; .ci/run installs it)"
        if under_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


def _promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_binary("promtool"), *args], cwd=PROMETHEUS, input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_example_config() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


class Prometheus:
    """A Prometheus server on loopback with its own config and storage in a temp directory."""

    def __init__(self, directory: Path, driftd_port: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "driftd",
                                "static_configs": [{"targets": [f"127.0.0.1:{driftd_port}"]}]}],
        }
        config_path = directory / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [_binary("prometheus"), f"--config.file={config_path}", f"--storage.tsdb.path={directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                cwd=directory, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"prometheus exited with {self.proc.returncode}\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(ready, timeout, interval=0.2, message="Prometheus /-/ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def adapting_demo_monitor(directory: Path) -> dict[str, Any]:
    """The built-in demo monitor (as monitor.cli.demo builds it) with a model trained on its reference rows.

    The labelled training data are the synthetic source's first rows (the demo's reference), labelled
    by a rule on two sensors; a logistic regression on the six numeric sensors is pickled beside them.
    """
    linear_model = require_module("sklearn.linear_model")
    options = demo_monitor()["source"]["options"]
    connector = SyntheticConnector({**options, "rows_per_fetch": DEMO_REFERENCE_ROWS})
    rows = connector.fetch(None, DEMO_REFERENCE_ROWS).table
    connector.close()
    features = np.column_stack([rows.column(name).to_numpy() for name in NUMERIC_FEATURES])
    temperature, humidity = rows.column("temperature").to_numpy(), rows.column("humidity").to_numpy()
    labels = ((temperature - 21.0) / 1.5 + (humidity - 45.0) / 6.0 > 0).astype(np.int64)
    model = linear_model.LogisticRegression(max_iter=1000).fit(features, labels)
    model_path = directory / "model.pkl"
    with open(model_path, "wb") as handle:
        pickle.dump(model, handle)
    os.chmod(model_path, 0o600)  # driftd loads pickles only from files no one else can write
    training = write_csv(directory / "training.csv", pa.table(
        {**{name: rows.column(name) for name in NUMERIC_FEATURES}, "label": pa.array(labels)}))
    # The true labels of the live rows that follow, by the same rule, keyed by each row's time as driftd
    # writes it: the label source of the realized-performance panels.
    connector = SyntheticConnector({**options, "rows_per_fetch": LABELLED_ROWS})
    live = connector.fetch(DEMO_REFERENCE_ROWS, LABELLED_ROWS).table
    connector.close()
    truth = ((live.column("temperature").to_numpy() - 21.0) / 1.5
             + (live.column("humidity").to_numpy() - 45.0) / 6.0 > 0).astype(np.int64)
    (directory / "labels").mkdir()
    parquet.write_table(pa.table({"ts": live.column("ts").to_numpy(zero_copy_only=False).astype(str),
                                  "label": truth}), directory / "labels" / "labels.parquet")
    demo = demo_monitor()
    assert demo["name"] == MONITOR
    return {**demo,
            "model": {"path": str(model_path), "label": "label", "training_data": str(training),
                      "store": str(directory / "models")},
            "performance": {"target": "label", "reference": str(training),
                            "labels": {"source": {"type": "files", "options": {"path": str(directory / "labels")}},
                                       "key": "ts", "join": "time"}},
            "adaptation": {"adapters": ADAPTERS, "cooldown": 0}}


def _adaptation_runs(prometheus: Prometheus) -> dict[tuple[str, str], int]:
    """Runs by (adapter, outcome) as Prometheus last scraped them (outcomes that never happened left out)."""
    return {(series["metric"]["adapter"], series["metric"]["outcome"]): int(float(series["value"][1]))
            for series in prometheus.query(f'driftd_adaptations_total{{monitor="{MONITOR}"}} > 0')}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Driftd, Prometheus]]:
    """The adapting demo daemon and a Prometheus scraping it, once Prometheus saw the drift adapted to."""
    _binary("prometheus")
    directory = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    path = write_config(directory / "driftd.yaml", port, [adapting_demo_monitor(directory)])
    # Two notifiers, so the outbox panels have data: one delivers, one's endpoint refuses every connection.
    receiver = Receiver()
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["notifiers"] = [
        {"type": "webhook", "name": "receiver", "events": ["window_evaluated", "drift_detected"],
         "options": {"url": f"{receiver.url}/hook"}},
        {"type": "webhook", "name": "unreachable", "events": ["window_evaluated"],
         "options": {"url": f"http://127.0.0.1:{free_port()}/hook", "timeout": 1}}]
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    daemon = Driftd(directory, ["--config", "driftd.yaml"], port).start()
    prometheus = None
    try:
        daemon.wait_http()
        prometheus = Prometheus(directory, port)
        prometheus.wait_ready()
        wait_for(lambda: prometheus.query(f'driftd_dataset_drift{{monitor="{MONITOR}"}} == 1'), 60, interval=1,
                 message="the demo in drift, seen by Prometheus", process=daemon)
        wait_for(lambda: _adaptation_runs(prometheus) == EXPECTED_RUNS, 60, interval=1,
                 message=f"the drift adapted to ({EXPECTED_RUNS}), seen by Prometheus", process=daemon)
        yield daemon, prometheus
    finally:
        if prometheus is not None:
            prometheus.stop()
        daemon.kill()
        receiver.close()


def test_promtool_checks_the_metrics_driftd_serves(stack: tuple[Driftd, Prometheus]) -> None:
    daemon, _ = stack
    result = _promtool("check", "metrics", stdin=daemon.get("/metrics").text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_scrapes_driftd_and_sees_the_drift(stack: tuple[Driftd, Prometheus]) -> None:
    _, prometheus = stack
    (up,) = prometheus.query('up{job="driftd"}')
    assert up["value"][1] == "1"
    (drift,) = prometheus.query(f'driftd_dataset_drift{{monitor="{MONITOR}"}}')
    assert drift["value"][1] == "1"


def test_every_rule_is_loaded_healthy_and_drift_alert_is_active(stack: tuple[Driftd, Prometheus]) -> None:
    _, prometheus = stack
    expected = {rule["alert"]: rule for rule in load_rules()}

    def evaluated() -> dict[str, dict[str, Any]] | None:
        rules = {rule["name"]: rule for group in prometheus.api("rules")["groups"] for rule in group["rules"]}
        return rules if all(rule["health"] != "unknown" for rule in rules.values()) else None

    rules = wait_for(evaluated, 20, message="every rule evaluated once")
    assert set(rules) == set(expected)
    assert {name: (rule["health"], rule.get("lastError", "")) for name, rule in rules.items()} == {
        name: ("ok", "") for name in expected}

    # The product rule waits 5m before firing; meanwhile its expression holds and the alert is pending.
    active = prometheus.query(expected["DriftdDatasetDrift"]["expr"])
    assert [series["metric"]["monitor"] for series in active] == [MONITOR]
    def alert_states() -> dict[tuple[str, str | None], str] | None:
        states = {(alert["labels"]["alertname"], alert["labels"].get("monitor")): alert["state"]
                  for alert in prometheus.api("alerts")["alerts"]}
        return states if ("DriftdDatasetDrift", MONITOR) in states else None

    states = wait_for(alert_states, 20, message="the drift alert active")
    assert states[("DriftdDatasetDrift", MONITOR)] in {"pending", "firing"}
    # The demo's new category 'fault' fails its data-quality check (status, new_category), and only that.
    failing = prometheus.query(expected["DriftdDataQuality"]["expr"])
    assert {(s["metric"]["feature"], s["metric"]["check"]) for s in failing} >= {("status", "new_category")}
    assert not {s["metric"]["feature"] for s in failing} & {"voltage", "rpm", "site"}, failing
    # A healthy daemon raises nothing about its own health.
    assert {name for name, _ in states} <= {"DriftdDatasetDrift", "DriftdDriftShareHigh", "DriftdDataQuality"}, states


def test_adaptation_alert_counts_every_run_and_stays_quiet_below_its_threshold(
        stack: tuple[Driftd, Prometheus]) -> None:
    _, prometheus = stack
    (rule,) = [rule for rule in load_rules() if rule["alert"] == "DriftdAdaptationFailing"]
    match = re.fullmatch(r"(?s)(.+?)\s*>=\s*(\d+)\s+unless\s+on\s*\([^)]*\)\s*(.+?)\s*>\s*0", rule["expr"].strip())
    assert match, rule["expr"]
    failed_or_rejected, threshold, promoted = match[1], int(match[2]), match[3]
    # Configured adapters start at 0; a series born at 1 (e.g. an adapter added by a reload) counts too.
    (counted,) = prometheus.query(failed_or_rejected)
    assert counted["metric"]["monitor"] == MONITOR
    assert float(counted["value"][1]) == sum(n for (_, outcome), n in EXPECTED_RUNS.items()
                                             if outcome in {"failed", "rejected"}) == 2
    assert all(float(series["value"][1]) == 0 for series in prometheus.query(promoted))  # zero-started series
    assert threshold > 2 and prometheus.query(rule["expr"]) == []
    assert not [alert for alert in prometheus.api("alerts")["alerts"]
                if alert["labels"]["alertname"] == "DriftdAdaptationFailing"]


def test_adaptation_panels_count_the_runs_and_show_the_model(stack: tuple[Driftd, Prometheus]) -> None:
    _, prometheus = stack
    monitor = load_dashboards()["driftd-monitor.json"]
    panels = {panel["title"]: target["expr"] for panel, target in panel_targets(monitor)}

    def resolved(expr: str) -> str:
        for name, value in {**BUILTINS, "$monitor": MONITOR}.items():
            expr = expr.replace(name, value)
        return expr

    by_outcome = {series["metric"]["outcome"]: float(series["value"][1])
                  for series in prometheus.query(resolved(panels["Adaptations in range by outcome"]))
                  if float(series["value"][1])}
    assert by_outcome == {"rejected": 2.0, "succeeded": 1.0}
    (version,) = prometheus.query(resolved(panels["Model version"]))
    assert version["value"][1] == "1"  # nothing promoted: the configured model
    fleet = load_dashboards()["driftd-fleet.json"]
    (failing,) = [target["expr"] for panel, target in panel_targets(fleet)
                  if panel["title"] == "Monitors whose adaptations came to nothing"]
    assert {(s["metric"]["monitor"], s["metric"]["outcome"], s["value"][1])
            for s in prometheus.query(resolved(failing))} == {(MONITOR, "rejected", "2")}


def _label_values(prometheus: Prometheus, query: str) -> list[str]:
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
    assert match, f"unsupported variable query {query!r}"
    return prometheus.api(f"label/{match[2]}/values", **{"match[]": match[1]})


def _dashboard_queries(prometheus: Prometheus) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target with the variables filled in as Grafana would."""
    queries = []
    for name, dashboard in load_dashboards().items():
        values = {"monitor": MONITOR}
        variables = query_variables(dashboard)
        for variable in variables:
            if variable["name"] == "monitor":
                continue
            resolved = _label_values(prometheus, variable_query(variable).replace("$monitor", MONITOR))
            assert resolved, f"{name}: variable {variable['name']} has no values"
            values[variable["name"]] = resolved
        for panel, target in panel_targets(dashboard):
            repeat = panel.get("repeat")
            for value in (values[repeat] if repeat else [None]):
                expr = target["expr"]
                for builtin, replacement in BUILTINS.items():
                    expr = expr.replace(builtin, replacement)
                for variable in variables:
                    var = variable["name"]
                    if var == repeat:
                        substitute = value
                    elif var == "monitor":
                        substitute = MONITOR
                    else:
                        substitute = variable["allValue"] if variable.get("includeAll") else values[var][0]
                    expr = expr.replace(f"${var}", substitute)
                assert "$" not in expr, f"{name}: unresolved variable in {expr}"
                queries.append((f"{name}: {panel['title']!r} ({value or target['refId']})", expr))
    return queries


def _has_data(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


def test_every_dashboard_panel_query_returns_data(stack: tuple[Driftd, Prometheus]) -> None:
    _, prometheus = stack
    queries = _dashboard_queries(prometheus)
    assert len(queries) >= 30
    pending = dict(queries)
    # rate() and histogram panels need a few scrapes in their window: poll until every one has data.
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        pending = {where: expr for where, expr in pending.items() if not _has_data(prometheus.query(expr))}
        if pending:
            time.sleep(2)
    assert not pending, "panels without data:\n" + "\n".join(f"{w}: {e}" for w, e in pending.items())


def test_every_dashboard_annotation_is_valid_promql(stack: tuple[Driftd, Prometheus]) -> None:
    _, prometheus = stack
    for name, dashboard in load_dashboards().items():
        for annotation in query_annotations(dashboard):
            expr = annotation["expr"].replace("$monitor", MONITOR)
            for builtin, replacement in BUILTINS.items():
                expr = expr.replace(builtin, replacement)
            prometheus.query(expr)  # status "success", or the helper fails the test

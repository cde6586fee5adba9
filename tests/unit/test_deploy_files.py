"""The files in deploy/ parse and agree with each other and with the metrics driftd exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import ServerConfig
from monitor.metrics import FeatureScore, Metrics, MonitorSnapshot

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
RULES = PROMETHEUS / "driftd-rules.yml"
RULE_TESTS = PROMETHEUS / "driftd-rules.test.yml"
DASHBOARDS = GRAFANA / "dashboards"

#: Dashboards are linked and bookmarked by uid: these never change.
DASHBOARD_UIDS = {"driftd-fleet", "driftd-monitor", "driftd-daemon"}
DATASOURCE_UID = "driftd-prometheus"
RUNBOOK_BASE = "https://github.com/driftd/driftd#"
#: The README's "Operate" section has one heading per alert, e.g. "#### Alert: DriftdDatasetDrift".
RUNBOOK_ANCHORS = {
    "alert-driftddatasetdrift",
    "alert-driftdoutboxstuck",
    "alert-driftddriftsharehigh",
    "alert-driftdsourcedown",
    "alert-driftdmonitorstale",
    "alert-driftdevaluationerrors",
    "alert-driftdsourcelostmessages",
    "alert-driftdschedulerlagging",
    "alert-driftddown",
    "alert-driftdadaptationfailing",
    "alert-driftddataquality",
    "alert-driftdmodelperformancedrop",
    "alert-driftdmodelperformancedroprealized",
}
SEVERITIES = {"critical", "warning", "info"}
METRIC_NAME = re.compile(r"(?<![A-Za-z0-9_:])driftd_[A-Za-z0-9_:]*")


# Shared with tests/integration/test_prometheus.py.

def load_rules() -> list[dict[str, Any]]:
    """Every rule of driftd-rules.yml."""
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard model by file name."""
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))}


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows; rows themselves are left out."""
    for panel in panels:
        if panel.get("type") == "row":
            yield from iter_panels(panel.get("panels", []))
        else:
            yield panel


def panel_targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of every panel."""
    for panel in iter_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel, target


def query_variables(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]


def variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return query["query"] if isinstance(query, dict) else query


def query_annotations(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in dashboard.get("annotations", {}).get("list", []) if not a.get("builtIn")]


def all_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule, panel target, variable query and annotation in deploy/."""
    found = [(f"rule {rule['alert']}", rule["expr"]) for rule in load_rules()]
    for name, dashboard in load_dashboards().items():
        found += [(f"{name}: panel {panel['title']!r}", target["expr"]) for panel, target in panel_targets(dashboard)]
        found += [(f"{name}: variable {v['name']}", variable_query(v)) for v in query_variables(dashboard)]
        found += [(f"{name}: annotation {a['name']!r}", a["expr"]) for a in query_annotations(dashboard)]
    return found


def exported_series_names() -> set[str]:
    """The series names a scrape of driftd gives Prometheus (one monitor, every metric populated)."""
    metrics = Metrics()
    metrics.add_monitor("m")
    metrics.publish("m", MonitorSnapshot(
        state_code=2, drift_share=0.5, last_window_timestamp=1_700_000_000.0, reference_version=1,
        source_up=True, scores=[FeatureScore("a", "ks", 0.4, 1e-6, True), FeatureScore("b", "psi", 0.01, None, False)],
        feature_drifted={"a": True, "b": False}, features=["a", "b", "c"], missing_features=frozenset({"c"}),
        shift_kinds=frozenset({("a", "location")}), quality=(("a", "missing_rate", True),),
        segments=(("site=north", True),),
        # a monitor with a performance section, after labels arrived for a window
        performance={"reliable": True, "metrics": [{"metric": "accuracy", "value": 0.8, "lower": 0.78, "upper": 0.82,
                                                    "reference_lower": 0.84, "reference_upper": 0.9}]},
        realized={"accuracy": 0.79}, estimation_error={"accuracy": 0.01}, realized_alerts=frozenset({"accuracy"}),
    ))
    # A monitor with a model and an adaptation section, after one adapter run.
    metrics.model_version.labels("m").set(2)
    metrics.adaptations.labels("m", "label_shift", "promoted").inc()
    metrics.adaptation_seconds.labels("m", "label_shift").observe(1.5)
    # An outbox destination that failed once and delivered once.
    metrics.outbox_failures.labels("notifier:ops").inc()
    metrics.outbox_delivered.labels("notifier:ops").inc()
    text = generate_latest(metrics.registry).decode()
    names = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    # Counters' *_created samples are exposition details, not series to query.
    return {name for name in names if not name.endswith("_created")}


def _yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def _deploy_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in suffixes)


@pytest.mark.parametrize("path", _deploy_files(".yml", ".yaml"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert _yaml_documents(path), f"{path} is empty"


@pytest.mark.parametrize("path", _deploy_files(".json"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_json_file_parses(path: Path) -> None:
    json.loads(path.read_text(encoding="utf-8"))


def test_dashboards_have_their_stable_unique_uids() -> None:
    dashboards = load_dashboards()
    uids = [dashboard["uid"] for dashboard in dashboards.values()]
    assert sorted(uids) == sorted(DASHBOARD_UIDS)
    for name, dashboard in dashboards.items():
        assert name == f"{dashboard['uid']}.json"
        assert dashboard["schemaVersion"] >= 36, name
        assert dashboard.get("id") is None, f"{name}: a provisioned dashboard must not carry a database id"
        rows = [panel for panel in dashboard["panels"] if panel.get("type") == "row"]
        ids = [panel["id"] for panel in [*rows, *iter_panels(dashboard["panels"])]]
        assert len(ids) > len(rows), f"{name} has no panels"
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    assert len({dashboard["title"] for dashboard in dashboards.values()}) == len(dashboards)


def test_panels_fit_the_grid_without_overlapping() -> None:
    for name, dashboard in load_dashboards().items():
        taken: dict[tuple[int, int], dict[str, Any]] = {}
        # The top level as shown (the panels of a collapsed row are laid out below it when it opens).
        for panel in dashboard["panels"]:
            pos = panel["gridPos"]
            assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    other = taken.setdefault((x, y), panel)
                    assert other is panel, f"{name}: {panel['title']!r} overlaps {other['title']!r}"


def test_every_panel_queries_the_provisioned_datasource_with_an_expr() -> None:
    for name, dashboard in load_dashboards().items():
        for panel in iter_panels(dashboard["panels"]):
            assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, (name, panel["title"])
            assert panel["targets"], f"{name}: panel {panel['title']!r} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID, (name, panel["title"])
                assert target.get("expr", "").strip(), f"{name}: panel {panel['title']!r} has a target without expr"
        for variable in query_variables(dashboard):
            assert variable["datasource"]["uid"] == DATASOURCE_UID, (name, variable["name"])
        for annotation in query_annotations(dashboard):
            assert annotation["datasource"]["uid"] == DATASOURCE_UID, (name, annotation["name"])
            assert annotation["expr"].strip()


def test_monitor_dashboard_is_templated_on_the_monitor() -> None:
    dashboard = load_dashboards()["driftd-monitor.json"]
    variables = {v["name"]: v for v in query_variables(dashboard)}
    assert variable_query(variables["monitor"]) == "label_values(driftd_monitor_state, monitor)"
    for panel, target in panel_targets(dashboard):
        assert 'monitor="$monitor"' in target["expr"], f"panel {panel['title']!r} ignores $monitor"
    assert any("driftd_drift_events_total" in a["expr"] for a in query_annotations(dashboard))


def test_every_metric_name_in_rules_and_dashboards_is_exported() -> None:
    exported = exported_series_names()
    used: set[str] = set()
    for where, expr in all_expressions():
        names = set(METRIC_NAME.findall(expr))
        unknown = names - exported
        assert not unknown, f"{where} uses {sorted(unknown)}, which driftd does not export: {expr}"
        used |= names
    assert used, "no driftd metric found in deploy/"


def test_every_exported_metric_is_on_a_dashboard() -> None:
    dashboard_text = "\n".join(expr for where, expr in all_expressions() if not where.startswith("rule "))
    families = {re.sub(r"_(bucket|count|sum|total)$", "", name) for name in exported_series_names()}
    missing = {family for family in families if family not in dashboard_text}
    assert not missing, f"exported but on no dashboard: {sorted(missing)}"


def test_grafana_provisioning_points_at_the_datasource_and_dashboards() -> None:
    datasources = _yaml_documents(GRAFANA / "provisioning" / "datasources" / "driftd.yml")[0]["datasources"]
    assert [(d["uid"], d["type"]) for d in datasources] == [(DATASOURCE_UID, "prometheus")]
    providers = _yaml_documents(GRAFANA / "provisioning" / "dashboards" / "driftd.yml")[0]["providers"]
    assert len(providers) == 1 and providers[0]["type"] == "file"
    assert providers[0]["options"]["path"].startswith("/"), "the provider path is where the dashboards are mounted"
    assert DASHBOARDS.is_dir() and sorted(p.stem for p in DASHBOARDS.glob("*.json")) == sorted(DASHBOARD_UIDS)


def test_rules_have_severity_annotations_and_runbooks() -> None:
    rules = load_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    anchors = set()
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        # Per-monitor alerts name the monitor; the one about the whole process names its instance.
        label = "$labels.monitor" if METRIC_NAME.search(rule["expr"]) else "$labels.instance"
        if "by (job)" in rule["expr"]:  # about state every replica shares (the outbox): one alert per deployment
            label = "$labels.job"
        assert label in annotations["summary"] and label in annotations["description"], name
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), name
        anchor = url[len(RUNBOOK_BASE):]
        assert anchor == f"alert-{name.lower()}", name
        anchors.add(anchor)
    assert anchors == RUNBOOK_ANCHORS


def test_every_alert_has_unit_tests_firing_and_quiet() -> None:
    tests = _yaml_documents(RULE_TESTS)[0]
    assert tests["rule_files"] == [RULES.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in load_rules()}
    assert firing == alerts and quiet == alerts


def test_example_prometheus_config_scrapes_driftd_with_the_rules() -> None:
    config = _yaml_documents(PROMETHEUS / "prometheus.yml")[0]
    assert config["rule_files"] == [RULES.name]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["driftd"]["static_configs"] for t in sc["targets"]]
    server = ServerConfig()
    assert targets == [f"{server.host}:{server.port}"]
    # The DriftdDown rule and the daemon dashboard select this job.
    assert any('job="driftd"' in expr for _, expr in all_expressions())

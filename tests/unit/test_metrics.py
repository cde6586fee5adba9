"""Metrics: names, the drift collector, no stale series, the HTTP endpoints."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from monitor import __version__
from monitor.metrics import FeatureScore, Metrics, MonitorSnapshot
from monitor.http.server import create_app


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _snapshot(features: list[str], drifted: set[str]) -> MonitorSnapshot:
    return MonitorSnapshot(
        state_code=2, drift_share=len(drifted) / len(features), last_window_timestamp=1_700_000_000.0,
        reference_version=3, source_up=True,
        scores=[FeatureScore(f, "ks", 0.5 if f in drifted else 0.01, 1e-9 if f in drifted else 0.7, f in drifted)
                for f in features],
        feature_drifted={f: f in drifted for f in features}, features=list(features),
    )


def test_published_snapshot_is_exported_with_labels() -> None:
    metrics = Metrics()
    metrics.add_monitor("m")
    metrics.publish("m", _snapshot(["a", "b"], {"a"}))
    samples = _samples(metrics)
    assert samples[("driftd_feature_drifted", (("feature", "a"), ("monitor", "m")))] == 1
    assert samples[("driftd_feature_drifted", (("feature", "b"), ("monitor", "m")))] == 0
    assert samples[("driftd_feature_p_value", (("feature", "a"), ("measure", "ks"), ("monitor", "m")))] == 1e-9
    assert samples[("driftd_dataset_drift", (("monitor", "m"),))] == 1
    assert samples[("driftd_drift_share_ratio", (("monitor", "m"),))] == 0.5
    assert samples[("driftd_reference_version", (("monitor", "m"),))] == 3
    assert samples[("driftd_windows_total", (("monitor", "m"),))] == 0
    build = [dict(labels) for name, labels in samples if name == "driftd_build_info"]
    assert build and build[0]["version"] == __version__


def test_removed_monitor_leaves_no_series() -> None:
    metrics = Metrics()
    for name in ("kept", "gone"):
        metrics.add_monitor(name)
        metrics.publish(name, _snapshot(["a"], {"a"}))
        metrics.windows.labels(name).inc()
        metrics.poll_seconds.labels(name).observe(0.1)
    metrics.remove_monitor("gone")
    monitors = {dict(labels).get("monitor") for _, labels in _samples(metrics)}
    assert "kept" in monitors and "gone" not in monitors


def test_feature_label_is_capped() -> None:
    metrics = Metrics(max_features=2)
    metrics.publish("m", _snapshot(["a", "b", "c"], {"c"}))
    features = {dict(labels)["feature"] for name, labels in _samples(metrics) if name == "driftd_feature_drifted"}
    assert features == {"a", "b"}


def test_counters_and_units_follow_prometheus_naming() -> None:
    metrics = Metrics()
    metrics.add_monitor("m")
    families = list(text_string_to_metric_families(generate_latest(metrics.registry).decode()))
    for family in families:
        assert family.name.startswith("driftd_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert family.name.endswith("_seconds")


def test_http_endpoints() -> None:
    metrics = Metrics()
    metrics.publish("m", _snapshot(["a"], set()))
    reasons: list[str] = []
    client = TestClient(create_app(metrics, lambda: reasons))
    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    assert 'driftd_feature_drifted{feature="a",monitor="m"} 0.0' in scrape.text
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    reasons.append("database unreachable: OperationalError")
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["reasons"] == reasons


def test_missing_features_and_multivariate_scores_are_exported() -> None:
    metrics = Metrics()
    metrics.publish("m", MonitorSnapshot(
        state_code=1, drift_share=0.5, last_window_timestamp=1_700_000_000.0,
        scores=[FeatureScore("a", "ks", 0.3, 1e-4, True), FeatureScore("*", "mmd", 0.02, 0.01, True)],
        feature_drifted={"a": True}, features=["a", "b"], missing_features=frozenset({"b"}),
    ))
    samples = _samples(metrics)
    assert samples[("driftd_feature_missing", (("feature", "b"), ("monitor", "m")))] == 1
    assert samples[("driftd_feature_missing", (("feature", "a"), ("monitor", "m")))] == 0
    assert ("driftd_feature_drifted", (("feature", "b"), ("monitor", "m"))) not in samples
    assert samples[("driftd_feature_p_value", (("feature", "*"), ("measure", "mmd"), ("monitor", "m")))] == 0.01


def test_a_scrape_formats_the_drift_gauges_of_the_monitors_that_changed_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.metrics import DriftCollector

    metrics = Metrics()
    formatted: list[list[str]] = []
    original = DriftCollector.families
    monkeypatch.setattr(DriftCollector, "families",
                        lambda self, snapshots: formatted.append([n for n, _ in snapshots]) or original(self, snapshots))

    def window(value: float) -> MonitorSnapshot:
        return MonitorSnapshot(last_window_timestamp=1.0, features=["a"], feature_drifted={"a": value > 0.1},
                               scores=[FeatureScore("a", "ks", value, 0.01, value > 0.1)])

    for name in ("m", "n", "o"):
        metrics.add_monitor(name)
        metrics.publish(name, window(0.05))
    metrics.exposition()
    assert formatted == [["m"], ["n"], ["o"]]
    formatted.clear()
    metrics.windows.labels("m").inc()  # a live counter: formatted at every scrape, no drift gauge again
    second = metrics.exposition()
    assert formatted == [] and b'driftd_windows_total{monitor="m"} 1.0' in second
    metrics.publish("n", window(0.5))
    metrics.update("o", source_up=False)
    metrics.update("m", source_up=None)  # unchanged: not formatted again
    third = metrics.exposition()
    assert formatted == [["n"], ["o"]]
    assert b'driftd_feature_divergence{feature="a",measure="ks",monitor="n"} 0.5' in third
    assert b'driftd_source_up{monitor="o"} 0.0' in third
    metrics.remove_monitor("m")
    metrics.add_monitor("p")  # a new monitor's default snapshot appears
    fourth = metrics.exposition()
    assert b'monitor="m"' not in fourth and b'driftd_monitor_error{monitor="p"} 0.0' in fourth
    assert fourth == generate_latest(metrics.registry)  # the same text as formatting everything
    assert third != second

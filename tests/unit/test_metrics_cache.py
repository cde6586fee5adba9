"""/metrics: each monitor's series are formatted once per change, and the text equals formatting everything."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from monitor.config import build_config
from monitor.daemon import Daemon

from monitor.metrics import FeatureScore, Metrics, MonitorSnapshot
from monitor.metrics import series as series_module
from tests.helpers import sample_table, write_csv


def _window(value: float) -> MonitorSnapshot:
    return MonitorSnapshot(last_window_timestamp=1.0, features=["a"], feature_drifted={"a": value > 0.1},
                           scores=[FeatureScore("a", "ks", value, 0.01, value > 0.1)])


def _same(metrics: Metrics) -> bytes:
    text = metrics.exposition()
    assert text == generate_latest(metrics.registry)
    return text


@pytest.mark.parametrize("settle", [False, True], ids=["formatted-at-scrape", "settled-at-tick-end"])
def test_every_kind_of_change_shows_in_the_next_scrape(settle: bool) -> None:
    metrics = Metrics()
    for name in ("m", "n"):
        metrics.add_monitor(name)
        metrics.publish(name, _window(0.05))
    _same(metrics)

    def step(change, expected: bytes) -> bytes:  # noqa: ANN001 - a zero-argument callable
        change()
        if settle:
            metrics.settle("m")
            metrics.settle("n")
        text = _same(metrics)
        assert expected in text
        return text

    windows, lag, lease = metrics.windows.labels("m"), metrics.scheduler_lag.labels("m"), metrics.lease_held.labels("m")
    _same(metrics)
    if settle:
        metrics.settle("m")
    step(windows.inc, b'driftd_windows_total{monitor="m"} 1.0')  # a series taken before the scrape, updated after
    step(lambda: lag.observe(0.2), b'driftd_scheduler_lag_seconds_bucket{le="0.25",monitor="m"} 1.0')
    step(lambda: lease.set(1), b'driftd_lease_held{monitor="m"} 1.0')
    step(lambda: metrics.adapters("m", ["tune"]),  # series created at zero, not updated
         b'driftd_adaptations_total{adapter="tune",monitor="m",outcome="succeeded"} 0.0')
    step(lambda: metrics.rows.labels("n").inc(250), b'driftd_rows_total{monitor="n"} 250.0')
    step(lambda: metrics.poll_seconds.labels("m").observe(0.003),
         b'driftd_poll_duration_seconds_bucket{le="0.005",monitor="m"} 1.0')
    step(lambda: metrics.lease_held.labels("n").set(1), b'driftd_lease_held{monitor="n"} 1.0')
    step(lambda: metrics.lease_held.labels("n").set(0), b'driftd_lease_held{monitor="n"} 0.0')
    step(lambda: metrics.measures("m", ["ks"]), b'driftd_measure_failures_total{measure="ks",monitor="m"} 0.0')
    step(lambda: metrics.measure_failed("m", "ks"), b'driftd_measure_failures_total{measure="ks",monitor="m"} 1.0')
    step(lambda: metrics.model_version.labels("m").set(3), b'driftd_model_version{monitor="m"} 3.0')
    step(lambda: metrics.count_invalid("n", "a", 7),
         b'driftd_invalid_values_total{feature="a",monitor="n"} 7.0')
    step(lambda: metrics.adaptation_ended("m", "retrain", "failed"),
         b'driftd_adaptations_total{adapter="retrain",monitor="m",outcome="failed"} 1.0')
    step(lambda: metrics.adaptation_took("m", "retrain", 42.0),
         b'driftd_adaptation_duration_seconds_count{adapter="retrain",monitor="m"} 1.0')
    step(lambda: metrics.publish("n", _window(0.5)),
         b'driftd_feature_divergence{feature="a",measure="ks",monitor="n"} 0.5')
    text = step(lambda: metrics.measure_failures.remove("m", "ks"), b'driftd_windows_total{monitor="m"} 1.0')
    assert b'driftd_measure_failures_total{measure="ks",monitor="m"}' not in text
    text = step(lambda: metrics.remove_monitor("n"), b'monitor="m"')
    assert b'monitor="n"' not in text
    assert "n" not in metrics.series._text and "n" not in metrics._drift_text, "a removed monitor's text is freed"
    step(lambda: metrics.add_monitor("n"), b'driftd_rows_total{monitor="n"} 0.0')


def test_a_scrape_formats_only_the_monitors_whose_series_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = Metrics()
    for name in ("m", "n", "o"):
        metrics.add_monitor(name)
    formatted: list[int] = []
    original = series_module._format
    monkeypatch.setattr(series_module, "_format", lambda own: formatted.append(len(own)) or original(own))
    _same(metrics)
    assert len(formatted) == 3
    formatted.clear()
    metrics.exposition()
    assert formatted == [], "nothing changed: nothing formatted"
    metrics.tick_seconds.labels("n").observe(0.2)
    metrics.exposition()
    assert len(formatted) == 1
    formatted.clear()
    metrics.windows.labels("o").inc()
    metrics.settle("o")  # the end of o's tick formats it...
    metrics.settle("m")  # ...and a monitor that did not change is not formatted again
    assert len(formatted) == 1
    formatted.clear()
    assert b'driftd_windows_total{monitor="o"} 1.0' in _same(metrics)
    assert formatted == [], "the scrape copies what the tick formatted"


def test_a_slow_formatting_never_replaces_a_newer_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrape and a tick's settle can format one monitor at once: the older reading must not win."""
    metrics = Metrics()
    metrics.add_monitor("m")
    metrics.windows.labels("m").inc()
    original = series_module._format
    done: list[bool] = []

    def slow(own):  # noqa: ANN001, ANN202 - the formatter's own signature
        text = original(own)  # read at one count...
        if not done:
            done.append(True)
            metrics.windows.labels("m").inc()  # ...then the count changes and a tick settles it first
            metrics.settle("m")
        return text

    monkeypatch.setattr(series_module, "_format", slow)
    metrics.series.settle("m")
    formatted: list[bool] = []
    monkeypatch.setattr(series_module, "_format", lambda own: formatted.append(True) or original(own))
    assert b'driftd_windows_total{monitor="m"} 2.0' in metrics.exposition()
    assert formatted == [], "the newer text was kept: the scrape had nothing to format"


def test_the_created_sections_follow_every_monitors_samples() -> None:
    """``generate_latest`` writes each counter's ``_created`` samples after all its ``_total`` ones."""
    metrics = Metrics()
    metrics.add_monitor("b")
    metrics.add_monitor("a")
    text = _same(metrics).decode()
    assert text.index('driftd_windows_total{monitor="a"}') < text.index("# HELP driftd_windows_created")
    assert text.index('driftd_windows_total{monitor="b"}') < text.index('driftd_windows_total{monitor="a"}')


def test_a_tick_of_the_daemon_formats_its_monitors_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon settles a monitor's text at the end of each tick: the scrape after it formats nothing."""
    write_csv(tmp_path / "one" / "part.csv", sample_table(1500, seed=1))
    monitor = {"name": "one", "source": {"type": "files", "options": {"path": str(tmp_path / "one")}},
               "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 250},
               "reference": {"first_rows": 1000}, "schedule": {"interval": "1h"}}
    config = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
              "monitors": [monitor]}
    daemon = Daemon(build_config(config, "test", environ={}))
    daemon.prepare()
    try:
        daemon.trigger("one")
        daemon.metrics.exposition()
        daemon.trigger("one")
        formatted: list[bool] = []
        original = series_module._format
        monkeypatch.setattr(series_module, "_format", lambda own: formatted.append(True) or original(own))
        text = daemon.metrics.exposition()
        assert formatted == [], "the tick formatted the monitor's series"
        assert text == generate_latest(daemon.metrics.registry)
        assert daemon.metrics.registry.get_sample_value("driftd_tick_duration_seconds_count", {"monitor": "one"}) == 2
        daemon._observe_lag("one", 0.3)  # a tick submitted to the scheduler's queue: formatted there, not in a scrape
        assert formatted == [True], "the lag's histogram, when it was observed"
        text = daemon.metrics.exposition()
        assert formatted == [True], "the scrape formatted nothing"
        assert b'driftd_scheduler_lag_seconds_bucket{le="0.5",monitor="one"} 1.0' in text
        series = daemon.metrics.series
        assert series.exposition() is series.exposition(), "nothing changed since: the same text, not built again"
    finally:
        daemon.stop()

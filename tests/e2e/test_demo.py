"""The README's promise: ``driftd run`` in an empty directory runs the demo and finds its drift."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import free_port, query, run_cli

pytestmark = pytest.mark.slow

DRIFTING = {"temperature", "pressure", "humidity", "vibration", "status"}
STEADY = {"voltage", "rpm", "site"}
#: What the demo injects (``plugins.connectors.synthetic.demo_shifts``), as the shift diagnosis names it.
INJECTED = {"temperature": "location", "vibration": "scale", "status": "new_category", "pressure": "swap",
            "humidity": "swap"}


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _dataset_drift(text: str) -> float | None:
    return _samples(text, "driftd_dataset_drift").get((("monitor", "demo-sensors"),))


def test_demo_runs_drifts_and_keeps_history(tmp_path: Path, driftd_process) -> None:
    port = free_port()
    daemon = driftd_process(port=port, DRIFTD_SERVER_PORT=str(port)).start()
    first = daemon.wait_log("\n", timeout=20).splitlines()[0]
    assert "built-in demo" in first, first

    metrics = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            metrics = daemon.get("/metrics").text
        except httpx.HTTPError:
            metrics = ""
        if _dataset_drift(metrics) == 1.0:
            break
        assert daemon.proc.poll() is None, daemon.log()
        time.sleep(1)
    else:
        pytest.fail(f"no dataset drift within 60s\n{metrics}\n{daemon.log()}")

    drifted = {dict(labels)["feature"]: value
               for labels, value in _samples(metrics, "driftd_feature_drifted").items()
               if dict(labels)["monitor"] == "demo-sensors"}
    assert drifted == {**{f: 1.0 for f in DRIFTING}, **{f: 0.0 for f in STEADY}}
    for histogram in ("driftd_scheduler_lag_seconds_count", "driftd_tick_duration_seconds_count",
                      "driftd_evaluation_duration_seconds_count", "driftd_poll_duration_seconds_count"):
        assert _samples(metrics, histogram)[(("monitor", "demo-sensors"),)] >= 4, histogram
    assert _samples(metrics, "driftd_windows_total")[(("monitor", "demo-sensors"),)] >= 5
    # what the demo injected, in data: a mean shift, a variance change, a new category, swapped sensors
    kinds = {dict(labels)["feature"]: dict(labels)["kind"] for labels in _samples(metrics, "driftd_feature_shift_kind")}
    assert kinds == INJECTED, kinds

    health = daemon.get("/healthz")
    assert health.status_code == 200
    ready = daemon.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text

    assert daemon.terminate(timeout=15) == 0, daemon.log()
    assert "stopped" in daemon.log().splitlines()[-1], daemon.log()

    db = tmp_path / "driftd.db"
    windows = query(db, "SELECT w.seq, w.rows, w.state FROM windows w JOIN monitors m ON m.id = w.monitor_id "
                        "WHERE m.name = 'demo-sensors' ORDER BY w.seq")
    assert len(windows) >= 2
    assert [seq for seq, _, _ in windows] == list(range(1, len(windows) + 1))
    assert all(rows == 1000 for _, rows, _ in windows)
    assert windows[-1][2] == "drift"
    # a first-run user sees quiet windows first: nothing flagged before the shift (after window 3)
    quiet = query(db, "SELECT w.seq, w.state, w.drifted_features FROM windows w JOIN monitors m "
                      "ON m.id = w.monitor_id WHERE m.name = 'demo-sensors' AND w.seq <= 3 ORDER BY w.seq")
    assert quiet == [(1, "ok", "[]"), (2, "ok", "[]"), (3, "ok", "[]")], quiet
    assert query(db, "SELECT count(*) FROM results")[0][0] > 0
    assert query(db, "SELECT count(*) FROM drift_events")[0][0] >= 1

    history = run_cli(["history", "demo-sensors"], tmp_path)
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert len(lines) == 1 + len(windows), history.stdout
    assert "drift" in lines[1] and lines[1].split()[0] == str(windows[-1][0])
    for line in lines[1:]:
        assert any(state in line.split() for state in ("ok", "warning", "drift")), line

    # ... and in words: in the log and in `driftd history --explain`
    log = daemon.log()
    for sentence in ("temperature: mean up", "vibration: spread ×", "status: new category 'fault' in",
                     "pressure: values now look like humidity's (swap?)"):
        assert sentence in log, (sentence, log[-4000:])
    explained = run_cli(["history", "demo-sensors", "--explain", "--limit", "1"], tmp_path)
    assert explained.returncode == 0, explained.stderr
    assert "humidity: values now look like pressure's (swap?)  [swap]" in explained.stdout, explained.stdout

    references = run_cli(["reference", "list", "demo-sensors"], tmp_path)
    assert references.returncode == 0, references.stderr
    [line] = references.stdout.splitlines()
    assert line.startswith("* v1 "), references.stdout

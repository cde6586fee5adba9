"""The HTTP API on a real daemon: reads, filters, pagination, tokens, writes and the OpenAPI document."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from monitor.store.adaptations import AdaptationRecords
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.store.migrate import upgrade
from monitor.store.schema import Adaptation, utcnow
from monitor.plugins import PluginManager
from monitor.domain.reference import summarize_table
from monitor.http.server import API_PREFIX, create_app
from tests.helpers import sample_table, write_csv

TOKEN = "s3cret-t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def make_daemon(url: str, data: Path, server: dict[str, Any] | None = None) -> Daemon:
    """A daemon over one files monitor: 1000 reference rows, 3 ok windows, then 4 drifted ones."""
    write_csv(data / "part-1.csv", sample_table(1000, seed=1))
    write_csv(data / "part-2.csv", sample_table(1500, seed=2, start_id=1000))
    write_csv(data / "part-3.csv", sample_table(2000, seed=3, shift=1.5, start_id=2500))
    config = build_config({"storage": {"url": url}, "server": server or {}, "monitors": [{
        "name": "m",
        "source": {"type": "files", "options": {"path": str(data)}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]},
        "window": {"rows": 500},
        "reference": {"first_rows": 1000},
        "measures": ["ks", "psi", "chi_square"],
    }, {
        "name": "off",
        "source": {"type": "files", "options": {"path": str(data)}},
        "features": {"numeric": ["a"]},
        "window": {"rows": 500},
        "enabled": False,
    }]}, "test", environ={})
    daemon = Daemon(config, PluginManager(load_entry_points=False))
    upgrade(daemon.store.engine)
    daemon.prepare()
    daemon.tick_all()  # the reference
    daemon.tick_all()  # seven windows
    records = AdaptationRecords(daemon.store)
    records.ensure_first_model("m", "/models/configured.pkl")
    records.add_model("m", "/models/m/adaptation-1", None, "a promoted challenger")
    return daemon


@pytest.fixture
def daemon(sqlite_url: str, tmp_path: Path) -> Iterator[Daemon]:
    built = make_daemon(sqlite_url, tmp_path / "data")
    yield built
    built.stop()


@pytest.fixture
def client(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("DRIFTD_API_TOKEN", TOKEN)
    from monitor.http.api import build_api
    return TestClient(create_app(daemon.metrics, daemon.readiness, api=build_api(daemon)))


def _get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(API_PREFIX + path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _walk(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated listing, following `next`."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = _get(client, path, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            return items
    raise AssertionError("pagination does not end")


def test_monitors_show_state_reference_and_a_config_summary(client: TestClient, tmp_path: Path) -> None:
    listing = client.get(f"{API_PREFIX}/monitors")
    assert str(tmp_path) not in listing.text  # connector options never leave the daemon
    monitors = {m["name"]: m for m in listing.json()["monitors"]}
    assert set(monitors) == {"m", "off"}
    m = monitors["m"]
    assert (m["state"], m["running"], m["reference_version"], m["source_up"]) == ("drift", True, 1, True)
    assert m["last_window"]["seq"] == 7 and m["last_window"]["evaluated_at"].endswith("Z")
    assert (m["windows"], m["events"], m["error"]) == (7, 1, None)
    assert m["config"]["source"] == "files" and m["config"]["features"]["numeric"] == ["a", "b"]
    assert [x["name"] for x in m["config"]["measures"]] == ["ks", "psi", "chi_square"]
    assert m["config"]["window"]["rows"] == 500
    off = monitors["off"]
    assert (off["enabled"], off["running"], off["state"], off["windows"]) == (False, False, None, 0)
    assert _get(client, "/monitors/m") == m
    missing = client.get(f"{API_PREFIX}/monitors/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_windows_filter_and_paginate_without_gaps_or_repeats(client: TestClient) -> None:
    everything = _get(client, "/monitors/m/windows")
    assert [w["seq"] for w in everything["items"]] == [7, 6, 5, 4, 3, 2, 1] and everything["next"] is None
    assert [w["state"] for w in everything["items"]] == ["drift"] * 4 + ["ok"] * 3
    assert everything["items"][0]["drifted_features"] == ["a"] and everything["items"][0]["reference_version"] == 1
    for limit in (1, 2, 3, 7):
        assert [w["seq"] for w in _walk(client, "/monitors/m/windows", limit=limit)] == [7, 6, 5, 4, 3, 2, 1]
    assert [w["seq"] for w in _walk(client, "/monitors/m/windows", state="ok", limit=2)] == [3, 2, 1]
    third = next(w for w in everything["items"] if w["seq"] == 3)["evaluated_at"]
    fifth = next(w for w in everything["items"] if w["seq"] == 5)["evaluated_at"]
    ranged = _get(client, "/monitors/m/windows", since=third, until=fifth)
    assert [w["seq"] for w in ranged["items"]] == [4, 3]
    assert _get(client, "/monitors/m/windows", since="2100-01-01T00:00:00Z")["items"] == []


def test_results_of_one_window_and_as_a_time_series(client: TestClient) -> None:
    found = _get(client, "/monitors/m/windows/4/results")
    assert found["window"]["seq"] == 4 and found["window"]["state"] == "drift"
    assert {(r["feature"], r["measure"]) for r in found["results"]} >= {("a", "ks"), ("b", "psi"), ("c", "chi_square")}
    only = _get(client, "/monitors/m/windows/4/results", feature="a", measure="ks")["results"]
    assert len(only) == 1 and only[0]["drifted"] and only[0]["p_value"] < 1e-6
    missing = client.get(f"{API_PREFIX}/monitors/m/windows/99/results")
    assert missing.status_code == 404 and "99" in missing.json()["error"]

    series = _get(client, "/monitors/m/results", feature="a", measure="ks")
    assert [p["seq"] for p in series["items"]] == [7, 6, 5, 4, 3, 2, 1]
    assert [p["drifted"] for p in series["items"]] == [True] * 4 + [False] * 3
    everything = _get(client, "/monitors/m/results", limit=500)["items"]
    paged = _walk(client, "/monitors/m/results", limit=4)
    key = [(p["seq"], p["feature"], p["measure"]) for p in paged]
    assert len(key) == len(set(key)) == len(everything)
    assert [p["seq"] for p in paged] == sorted((p["seq"] for p in paged), reverse=True)


def test_events_references_and_adaptations(client: TestClient, daemon: Daemon) -> None:
    events = _get(client, "/monitors/m/events")
    assert [(e["window_seq"], e["features"]) for e in events["items"]] == [(4, ["a"])]
    references = _get(client, "/monitors/m/references")["items"]
    assert [(r["version"], r["active"], r["rows"], r["origin"]) for r in references] == [
        (1, True, 1000, "first 1000 rows")]
    assert _get(client, "/monitors/off/references") == {"items": []}
    assert _get(client, "/adaptations") == {"items": [], "next": None}
    with daemon.store._session() as session, session.begin():
        now = utcnow()
        session.add(Adaptation(event_id=events["items"][0]["id"], adapter="reweight", state="failed",
                               created_at=now, updated_at=now, error="gate rejected"))
    runs = _get(client, "/adaptations", monitor="m", state="failed")["items"]
    assert [(r["monitor"], r["adapter"], r["error"]) for r in runs] == [("m", "reweight", "gate rejected")]
    assert _get(client, "/adaptations", state="succeeded")["items"] == []


@pytest.mark.parametrize(("query", "parameter"), [
    ("/monitors/m/windows?limit=abc", "limit"),
    ("/monitors/m/windows?limit=0", "limit"),
    ("/monitors/m/windows?limit=501", "limit"),
    ("/monitors/m/windows?since=yesterday", "since"),
    ("/monitors/m/windows?until=2026-13-01T00:00:00Z", "until"),
    ("/monitors/m/windows?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
    ("/monitors/m/windows?state=broken", "state"),
    ("/monitors/m/windows?cursor=abc", "cursor"),
    ("/monitors/m/windows?colour=red", "colour"),
    ("/monitors/m/windows/x/results", "seq"),
    ("/monitors/m/results?cursor=12", "cursor"),
    ("/monitors/m/results?feature=", "feature"),
    ("/adaptations?state=done", "state"),
])
def test_malformed_parameters_get_400_naming_the_parameter(client: TestClient, query: str, parameter: str) -> None:
    response = client.get(API_PREFIX + query)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["parameter"] == parameter and body["error"]


def test_unknown_paths_and_methods_answer_json(client: TestClient) -> None:
    assert client.get(f"{API_PREFIX}/nothing").json() == {"error": "Not Found"}
    assert client.delete(f"{API_PREFIX}/monitors").status_code == 405


def test_write_endpoints_need_the_bearer_token(client: TestClient, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"{API_PREFIX}/monitors/m/check"
    texts = []
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = client.post(url, headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        texts.append(refused.text + str(refused.headers))
    allowed = client.post(url, headers=AUTH)
    assert allowed.status_code == 200
    texts.append(allowed.text + str(allowed.headers))
    monkeypatch.delenv("DRIFTD_API_TOKEN")
    disabled = client.post(url, headers=AUTH)
    assert disabled.status_code == 403
    assert disabled.json() == {"error": "write API disabled: set DRIFTD_API_TOKEN"}
    texts.append(disabled.text)
    assert not any(TOKEN in text for text in texts)
    assert not any(TOKEN in record.getMessage() for record in caplog.records)


def test_check_runs_a_tick_now_and_returns_the_new_windows(client: TestClient, daemon: Daemon,
                                                           tmp_path: Path) -> None:
    nothing = client.post(f"{API_PREFIX}/monitors/m/check", headers=AUTH).json()
    assert nothing == {"monitor": "m", "rows_fetched": 0, "state": "drift", "windows": []}
    write_csv(tmp_path / "data" / "part-4.csv", sample_table(1000, seed=4, start_id=4500))
    report = client.post(f"{API_PREFIX}/monitors/m/check", headers=AUTH).json()
    assert report["rows_fetched"] == 1000 and [w["seq"] for w in report["windows"]] == [8, 9]
    assert _get(client, "/monitors/m/windows", limit=1)["items"][0]["seq"] == 9
    not_running = client.post(f"{API_PREFIX}/monitors/off/check", headers=AUTH)
    assert not_running.status_code == 409 and "not running" in not_running.json()["error"]
    assert client.post(f"{API_PREFIX}/monitors/nope/check", headers=AUTH).status_code == 404


def test_trigger_waits_for_the_scheduled_tick_in_flight(daemon: Daemon) -> None:
    import threading

    done = threading.Event()
    thread = threading.Thread(target=lambda: (daemon.trigger("m"), done.set()))
    with daemon._tick_locks["m"]:  # as the scheduler's job holds it during a tick
        thread.start()
        assert not done.wait(0.3)
    thread.join(10)
    assert done.is_set()
    with pytest.raises(KeyError):
        daemon.trigger("off")


def test_a_failing_check_answers_503(client: TestClient, tmp_path: Path) -> None:
    import shutil

    shutil.rmtree(tmp_path / "data")
    failed = client.post(f"{API_PREFIX}/monitors/m/check", headers=AUTH)
    assert failed.status_code == 503 and "monitor 'm'" in failed.json()["error"]


def test_activate_switches_the_reference(client: TestClient, daemon: Daemon) -> None:
    runner = daemon.runners["m"]
    shifted = summarize_table(sample_table(1000, seed=9, shift=1.5), runner.config.features, 10, 1000, "capture")
    daemon.store.add_reference(runner.monitor_id, shifted, activate=False)
    response = client.post(f"{API_PREFIX}/monitors/m/references/2/activate", headers=AUTH)
    assert response.status_code == 200 and response.json()["version"] == 2 and response.json()["active"]
    assert [(r.version, r.active) for r in daemon.store.references("m")] == [(1, False), (2, True)]
    assert _get(client, "/monitors/m")["reference_version"] == 2
    missing = client.post(f"{API_PREFIX}/monitors/m/references/7/activate", headers=AUTH)
    assert missing.status_code == 404 and "stored: 1, 2" in missing.json()["error"]
    assert client.post(f"{API_PREFIX}/monitors/m/references/x/activate", headers=AUTH).status_code == 400


def test_the_running_daemon_serves_the_api(sqlite_url: str, tmp_path: Path) -> None:
    import httpx

    from monitor.http.face import HttpFace

    daemon = make_daemon(sqlite_url, tmp_path / "data", server={"port": 0})
    http = HttpFace.attach(daemon)
    daemon.start()
    try:
        assert http.server is not None
        response = httpx.get(f"http://127.0.0.1:{http.port}{API_PREFIX}/monitors/m", timeout=10)
        assert response.status_code == 200 and response.json()["last_window"]["seq"] == 7
    finally:
        daemon.stop()


# ---- the OpenAPI document drives a call of every endpoint ---------------------------------------

GOOD = {"name": "m", "seq": "1", "to": "1", "version": "1", "event_id": "1", "by": "alice", "feature": "a", "measure": "ks",
        "monitor": "m",
        "since": "2000-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z", "limit": "1"}
BAD = {"integer": "one", "date-time": "not-a-time", "enum": "bogus", "string": ""}


def _schema_keys(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    return set(document["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties", {}))


def _call(client: TestClient, method: str, path: str, params: dict[str, str], values: dict[str, str]) -> Any:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return client.request(method, path, params=params, headers=AUTH)


def test_every_documented_endpoint_answers_good_and_bad_input(client: TestClient, daemon: Daemon) -> None:
    document = client.get(f"{API_PREFIX}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    served = {(mount.path + route.path, method) for mount in client.app.routes if isinstance(mount, Mount)
              for route in mount.routes if isinstance(route, Route)
              for method in route.methods or () if method != "HEAD"}
    assert served == documented
    assert len(documented) == 17
    for path, item in document["paths"].items():
        for method, operation in item.items():
            params = operation["parameters"]
            path_values = {p["name"]: GOOD[p["name"]] for p in params if p["in"] == "path"}
            query = {p["name"]: p["schema"].get("enum", [GOOD.get(p["name"])])[0] for p in params
                     if p["in"] == "query" and p["name"] != "cursor"}
            good = _call(client, method, path, query, path_values)
            if path.endswith("/adaptations/force"):  # "m" has no adaptation section: the documented 409
                assert good.status_code == 409 and "no adaptation section" in good.json()["error"], good.text
                assert "409" in operation["responses"]  # answered with 200 in test_adaptation_forced.py
            else:
                assert good.status_code == 200, (method, path, good.text)
                assert set(good.json()) >= _schema_keys(document, operation), (path, set(good.json()))
            body = good.json()
            if "cursor" in {p["name"] for p in params} and body.get("next"):
                follow = _call(client, method, path, {**query, "cursor": body["next"]}, path_values)
                assert follow.status_code == 200, (path, follow.text)

            bad_calls = [({"unknown": "1"}, path_values)]
            for p in params:
                kind = p["schema"].get("format") or ("enum" if "enum" in p["schema"] else p["schema"]["type"])
                if p["in"] == "query":
                    bad_calls.append(({p["name"]: BAD[kind] if p["name"] != "cursor" else "x"}, path_values))
                elif p["name"] == "name":
                    bad_calls.append(({}, {**path_values, "name": "nope"}))
                else:
                    bad_calls.append(({}, {**path_values, p["name"]: "x"}))
                    bad_calls.append(({}, {**path_values, p["name"]: "999"}))
            for bad_query, bad_path in bad_calls:
                response = _call(client, method, path, bad_query, bad_path)
                assert 400 <= response.status_code < 500, (method, path, bad_query, bad_path, response.text)
                assert response.json()["error"]


def test_model_versions_are_listed_and_rolled_back_with_the_token(client: TestClient) -> None:
    versions = client.get(f"{API_PREFIX}/monitors/m/models").json()["items"]
    assert [(v["version"], v["active"], v["path"]) for v in versions] == [
        (1, False, "/models/configured.pkl"), (2, True, "/models/m/adaptation-1")]
    assert client.post(f"{API_PREFIX}/monitors/m/models/rollback").status_code == 401
    back = client.post(f"{API_PREFIX}/monitors/m/models/rollback", headers=AUTH)
    assert back.status_code == 200 and back.json()["version"] == 1 and back.json()["active"]
    again = client.post(f"{API_PREFIX}/monitors/m/models/rollback", headers=AUTH)
    assert again.status_code == 409 and "cannot roll back from version 1" in again.json()["error"]
    assert client.get(f"{API_PREFIX}/monitors/off/models").json()["items"] == []


@pytest.mark.postgres
def test_read_endpoints_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    from monitor.http.api import build_api

    daemon = make_daemon(postgres_url, tmp_path / "data")
    try:
        client = TestClient(create_app(daemon.metrics, daemon.readiness, api=build_api(daemon)))
        assert _get(client, "/monitors/m")["state"] == "drift"
        assert [w["seq"] for w in _walk(client, "/monitors/m/windows", limit=3)] == [7, 6, 5, 4, 3, 2, 1]
        since = (datetime.fromisoformat(_get(client, "/monitors/m/windows")["items"][-1]["evaluated_at"])
                 + timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")
        assert 1 not in [w["seq"] for w in _get(client, "/monitors/m/windows", since=since)["items"]]
        series = _walk(client, "/monitors/m/results", feature="a", measure="ks", limit=2)
        assert [p["seq"] for p in series] == [7, 6, 5, 4, 3, 2, 1]
        assert [e["window_seq"] for e in _get(client, "/monitors/m/events")["items"]] == [4]
    finally:
        daemon.stop()


def test_acknowledge_an_event(client: TestClient) -> None:
    events = client.get(f"{API_PREFIX}/monitors/m/events").json()["items"]
    assert events and events[0]["acknowledged_at"] is None
    event_id = events[0]["id"]
    url = f"{API_PREFIX}/monitors/m/events/{event_id}/acknowledge"
    assert client.post(url, params={"by": "alice"}).status_code == 401
    acknowledged = client.post(url, params={"by": "alice"}, headers=AUTH)
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"] == "alice"
    again = client.get(f"{API_PREFIX}/monitors/m/events").json()["items"][0]
    assert again["acknowledged_by"] == "alice" and again["acknowledged_at"].endswith("Z")
    missing = client.post(f"{API_PREFIX}/monitors/m/events/999/acknowledge", headers=AUTH)
    assert missing.status_code == 404 and "no drift event 999" in missing.json()["error"]

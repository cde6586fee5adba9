"""The built-in drift page: served with its security headers, and in real headless Chromium it shows the
demo monitor in drift, its timeline and per-feature heatmap, with no console errors."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from monitor.metrics import Metrics
from monitor.http.page import CONTENT_SECURITY_POLICY
from monitor.http.server import create_app
from tests.e2e.conftest import free_port

CHROMIUM = "/usr/bin/chromium"


# ---- fast: the files and their headers ---------------------------------------------------------

@pytest.fixture
def page_client() -> TestClient:
    return TestClient(create_app(Metrics(), lambda: [], api=Starlette()))


@pytest.mark.parametrize(("path", "media_type", "needle"), [
    ("/", "text/html", b'<script src="app.js" defer></script>'),
    ("/app.js", "text/javascript", b'"use strict";'),
    ("/style.css", "text/css", b"--drift"),
])
def test_page_files_are_served_with_csp(page_client: TestClient, path: str, media_type: str, needle: bytes) -> None:
    response = page_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert needle in response.content
    csp = response.headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_page_has_no_inline_code_and_never_injects_html(page_client: TestClient) -> None:
    html = page_client.get("/").text
    assert "<style" not in html and not re.search(r"\son[a-z]+\s*=", html)  # no inline styles or handlers
    assert html.count("<script") == 1 and 'src="app.js"' in html
    script = page_client.get("/app.js").text
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert unsafe not in script, unsafe


def test_page_only_comes_with_the_api() -> None:
    client = TestClient(create_app(Metrics(), lambda: []))
    assert client.get("/").status_code == 404
    assert client.get("/metrics").status_code == 200


# ---- slow: the demo in headless Chromium -------------------------------------------------------

class Cdp:
    """A minimal Chrome DevTools Protocol client on one page target, collecting console errors."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client, from the dev extra

        self.ws = websocket.create_connection(ws_url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors: list[str] = []

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"exception: {text}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.errors.append("console.error: " + " ".join(str(a.get("value", a.get("description")))
                                                             for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                body = self.evaluate("document.body ? document.body.innerText : ''")
                pytest.fail(f"timed out waiting for {expression!r}\npage text:\n{body}\nerrors: {self.errors}")
            time.sleep(0.2)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Cdp]:
    """Headless Chromium with its DevTools port open, as a CDP client on its first page."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    port = free_port()
    profile = tmp_path / "chromium-profile"
    log = open(tmp_path / "chromium.log", "wb")
    proc = subprocess.Popen([
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-extensions", "--disable-dev-shm-usage", "--window-size=1280,900",
        f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank",
    ], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cdp = None
    try:
        deadline = time.monotonic() + 30
        targets: list[dict[str, Any]] = []
        while not targets:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not open its DevTools port\n{(tmp_path / 'chromium.log').read_text()}")
            try:
                targets = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                           if t.get("type") == "page"]
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)
        cdp = Cdp(targets[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            cdp.send(f"{domain}.enable")
        cdp.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        yield cdp
    finally:
        if cdp is not None:
            cdp.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _demo_in_drift(daemon, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if 'driftd_dataset_drift{monitor="demo-sensors"} 1.0' in daemon.get("/metrics").text:
                return
        except httpx.HTTPError:
            pass
        assert daemon.proc.poll() is None, daemon.log()
        time.sleep(0.5)
    pytest.fail(f"no dataset drift within {timeout:.0f}s\n{daemon.log()[-4000:]}")


def _screenshot(cdp: Cdp, path: Path) -> Path:
    height = cdp.evaluate("Math.ceil(document.documentElement.scrollHeight)") or 900
    shot = cdp.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": min(int(height), 3000), "scale": 1})
    path.write_bytes(base64.b64decode(shot["data"]))
    print(f"screenshot: {path}")
    return path


@pytest.mark.slow
def test_page_shows_the_demo_in_drift_in_chromium(tmp_path: Path, driftd_process, chromium: Cdp) -> None:
    port = free_port()
    daemon = driftd_process(port=port, DRIFTD_SERVER_PORT=str(port)).start()
    daemon.wait_http()
    _demo_in_drift(daemon)
    page = daemon.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]

    # the list of monitors
    cdp = chromium
    cdp.send("Page.navigate", url=daemon.url + "/")
    cdp.wait("document.querySelector('main[data-page=\"list\"][data-loaded]') !== null")
    row = cdp.evaluate("""(() => {
        const row = document.querySelector('tr[data-monitor="demo-sensors"]');
        return row && {link: row.querySelector('a').getAttribute('href'),
                       state: row.querySelector('.state').textContent,
                       source: row.querySelector('[data-source]').textContent,
                       text: row.innerText};
    })()""")
    assert row, cdp.evaluate("document.body.innerText")
    assert row["link"] == "#/monitors/demo-sensors"
    assert row["state"] == "drift", row
    assert row["source"] == "up", row
    assert "%" in row["text"] and "#" in row["text"], row
    _screenshot(cdp, tmp_path / "page-list.png")

    # one monitor: click through to it
    cdp.evaluate("document.querySelector('tr[data-monitor=\"demo-sensors\"] a').click()")
    cdp.wait("document.querySelector('main[data-page=\"monitor\"] svg.heatmap') !== null")
    view = cdp.evaluate("""(() => {
        const q = (s) => document.querySelector(s);
        const rows = [...document.querySelectorAll('svg.heatmap g.feature-row')];
        return {
          title: q('#monitor-title').textContent,
          state: q('#monitor-title .state').textContent,
          timelineTitle: q('svg.timeline title').textContent,
          timelineLine: !!q('svg.timeline path.line') && q('svg.timeline path.line').getAttribute('d').length > 10,
          points: document.querySelectorAll('svg.timeline circle.point').length,
          driftPoints: document.querySelectorAll('svg.timeline circle.point.state-drift').length,
          events: document.querySelectorAll('svg.timeline g.event-marker').length,
          features: Object.fromEntries(rows.map((r) => [r.dataset.feature, r.dataset.drifted])),
          cells: document.querySelectorAll('svg.heatmap rect.cell').length,
          measures: [...document.querySelectorAll('#measure option')].map((o) => o.value),
          eventRows: document.querySelectorAll('tr[data-event]').length,
        };
    })()""")
    assert view["title"].startswith("demo-sensors") and view["state"] == "drift", view
    assert "demo-sensors" in view["timelineTitle"] and view["timelineLine"], view
    assert view["points"] >= 2 and view["driftPoints"] >= 1, view
    assert view["events"] >= 1 and view["eventRows"] >= 1, view
    features = view["features"]
    assert {"temperature", "pressure", "humidity", "vibration", "voltage", "rpm", "status", "site"} <= set(features)
    assert features["temperature"] == "true" and features["status"] == "true", features
    assert features["voltage"] == "false" and features["rpm"] == "false", features
    assert view["cells"] >= 2 * len(features), view
    assert view["measures"][0] == "drifted" and "ks" in view["measures"], view
    # the "what changed" panel says what the demo injected
    changes = cdp.evaluate("""Object.fromEntries([...document.querySelectorAll('ul.changes li')]
                               .map((li) => [li.dataset.feature, [li.dataset.kind, li.textContent]]))""")
    assert {feature: kind for feature, (kind, _) in changes.items()} == {
        "temperature": "location", "vibration": "scale", "status": "new_category", "pressure": "swap",
        "humidity": "swap"}, changes
    assert "values now look like humidity's (swap?)" in changes["pressure"][1], changes
    assert "new category 'fault'" in changes["status"][1], changes
    # the demo's shifts hit every site: each of its four segments drifted, measured against its own reference
    segments = cdp.evaluate("document.querySelector('p.segments').dataset.driftedSegments")
    assert sorted(segments.split()) == ["site=east", "site=north", "site=south", "site=west"], segments
    _screenshot(cdp, tmp_path / "page-monitor.png")

    # the measure selector recolours the heatmap by one measure's values
    cdp.evaluate("""(() => { const s = document.getElementById('measure');
                             s.value = 'ks'; s.dispatchEvent(new Event('change')); })()""")
    cdp.wait("document.querySelector('#heatmap-title') && "
             "document.querySelector('#heatmap-title').textContent.endsWith('coloured by ks')")
    ks = cdp.evaluate("""Object.fromEntries([...document.querySelectorAll('svg.heatmap g.feature-row')]
                           .map((r) => [r.dataset.feature, r.querySelectorAll('rect.cell').length]))""")
    assert ks["temperature"] >= 2 and ks["voltage"] >= 2, ks

    assert cdp.errors == [], cdp.errors

    # an unknown monitor is an explained error, not a broken page (only the 404 itself is logged)
    cdp.send("Page.navigate", url=daemon.url + "/#/monitors/no-such-monitor")
    cdp.wait("document.querySelector('main .error') !== null")
    assert "no monitor named" in cdp.evaluate("document.querySelector('main .error').textContent")
    cdp.evaluate("1")  # drain pending events
    assert all("404" in error for error in cdp.errors), cdp.errors


EVIL = '<img src=x onerror="document.title=1">'


def _stub_api(monitors: list[dict[str, Any]]) -> Starlette:
    """An API with the page's read endpoints answering from fixed data (monitors without windows)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def listing(request: Request) -> JSONResponse:
        return JSONResponse({"monitors": monitors})

    async def one(request: Request) -> JSONResponse:
        found = [m for m in monitors if m["name"] == request.path_params["name"]]
        return JSONResponse(found[0]) if found else JSONResponse({"error": "no such monitor"}, status_code=404)

    async def empty(request: Request) -> JSONResponse:
        return JSONResponse({"items": [], "next": None})

    return Starlette(routes=[Route("/monitors", listing), Route("/monitors/{name}", one),
                             Route("/monitors/{name}/windows", empty), Route("/monitors/{name}/events", empty)])


def _fresh_monitor(name: str) -> dict[str, Any]:
    return {"name": name, "enabled": True, "running": True, "error": None, "state": None, "drift_share": None,
            "last_window": None, "reference_version": None, "source_up": None, "windows": 0, "events": 0,
            "config": {"source": "files", "features": {"numeric": ["a"], "categorical": []},
                       "window": {"rows": 100, "span": None, "timestamp": None},
                       "measures": [{"name": "ks", "threshold": 0.01}],
                       "schedule": {"interval": 60, "cron": None},
                       "drift": {"share": 0.5, "consecutive": 1, "correction": "none"}}}


@pytest.mark.slow
def test_page_explains_empty_states_and_escapes_api_text(tmp_path: Path, chromium: Cdp) -> None:
    from monitor.http.server import HttpServer

    monitors: list[dict[str, Any]] = []
    server = HttpServer(create_app(Metrics(), lambda: [], api=_stub_api(monitors)), "127.0.0.1", 0)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}"
        cdp = chromium
        cdp.send("Page.navigate", url=url + "/")
        cdp.wait("document.querySelector('main[data-loaded] [data-empty=\"monitors\"]') !== null")
        assert "No monitors are configured" in cdp.evaluate("document.querySelector('main').innerText")

        monitors.append(_fresh_monitor(EVIL))
        cdp.send("Page.reload")
        cdp.wait("document.querySelector('main[data-loaded] tr[data-monitor]') !== null")
        row = cdp.evaluate("""(() => { const r = document.querySelector('tr[data-monitor]');
            return {name: r.querySelector('a').textContent, imgs: document.querySelectorAll('main img').length,
                    state: r.querySelector('.state').textContent}; })()""")
        assert row == {"name": EVIL, "imgs": 0, "state": "no data"}, row

        cdp.evaluate("document.querySelector('tr[data-monitor] a').click()")
        cdp.wait("document.querySelector('main[data-page=\"monitor\"] [data-empty=\"windows\"]') !== null")
        text = cdp.evaluate("document.querySelector('main').innerText")
        assert "No windows evaluated yet" in text and EVIL in text, text
        assert cdp.evaluate("document.querySelectorAll('main img').length") == 0
        _screenshot(cdp, tmp_path / "page-empty.png")
        assert cdp.errors == [], cdp.errors
    finally:
        server.stop()


@pytest.mark.slow
def test_page_shows_estimated_and_realized_performance(tmp_path: Path, driftd_process, chromium: Cdp) -> None:
    """A real daemon with a performance section and late labels: the page's "Model performance" table."""
    import numpy as np
    import pyarrow as pa

    from tests.e2e.conftest import wait_for, write_config
    from tests.helpers import write_csv
    from tests.performance_scenario import FEATURES, classification

    task = classification(21, 2, windows=2, rows=1000)
    write_csv(tmp_path / "ref.csv", pa.table(task.reference))
    for i, window in enumerate(task.windows):
        write_csv(tmp_path / "data" / f"part-{i}.csv", pa.table({**{k: v for k, v in window.items()},
                                                                 "id": np.arange(i * 1000, (i + 1) * 1000)}))
    write_csv(tmp_path / "labels" / "a.csv", pa.table({"id": np.arange(600), "y": task.labels[0][:600]}))
    port = free_port()
    write_config(tmp_path / "driftd.yaml", port, [{
        "name": "churn", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}},
        "features": {"numeric": list(FEATURES)}, "window": {"rows": 1000},
        "reference": {"path": str(tmp_path / "ref.csv")}, "measures": ["ks"], "schedule": {"interval": 1},
        "performance": {"target": "y", "probabilities": ["p0", "p1"], "prediction": "prediction", "classes": [0, 1],
                        "labels": {"source": {"type": "files", "options": {"path": str(tmp_path / "labels")}},
                                   "key": "id", "min_labels": 100}}}])
    daemon = driftd_process(["--config", "driftd.yaml"], port=port).start()
    daemon.wait_http()

    def realized() -> bool:
        items = daemon.get("/api/v1/monitors/churn/windows").json()["items"]
        return len(items) == 2 and any(m["realized"] is not None for w in items for m in w["performance"])

    wait_for(realized, 60, interval=0.5, message="two windows, the first with realized performance", process=daemon)
    cdp = chromium
    cdp.send("Page.navigate", url=daemon.url + "/#/monitors/churn")
    cdp.wait("document.querySelector('tr[data-performance]') !== null")
    table = cdp.evaluate("""Object.fromEntries([...document.querySelectorAll('tr[data-performance]')]
                             .map((r) => [r.dataset.performance, r.innerText]))""")
    assert set(table) >= {"1:accuracy", "2:accuracy", "1:roc_auc"}, table
    assert "600 labels" in table["1:accuracy"] and "no labels yet" in table["2:accuracy"], table
    expected = float(np.mean(task.windows[0]["prediction"][:600] == task.labels[0][:600]))
    assert f"{expected:.4g}"[:5] in table["1:accuracy"], (expected, table["1:accuracy"])
    _screenshot(cdp, tmp_path / "page-performance.png")
    assert cdp.errors == [], cdp.errors

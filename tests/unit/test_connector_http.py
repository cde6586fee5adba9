"""The http connector against a real endpoint served in-process: contract, auth, errors."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa
import pytest

from monitor.connector import ConnectorError, ConnectorOptionsError
from monitor.testing import check_bad_options, check_connector, drain
from plugins.connectors.http import HttpConnector

TOKEN = "tok-3f9a1c77e2"


class Endpoint:
    """``GET /v1/readings?after=&limit=`` over a growing list, behind an ``X-Api-Key`` header."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.requests: list[dict[str, list[str]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                endpoint.requests.append(query)
                if self.headers.get("X-Api-Key") != TOKEN:
                    self._send(401, {"error": f"bad key {self.headers.get('X-Api-Key')}"})
                elif url.path != "/v1/readings":
                    self._send(404, {"error": "no such path"})
                else:
                    after = int(query["after"][0]) if "after" in query else -1
                    limit = int(query.get("limit", ["1000"])[0])
                    page = [r for r in endpoint.records if r["id"] > after][:limit]
                    self._send(200, {"data": {"items": page}, "site": query.get("site")})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/readings"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def write(self, rows: int) -> None:
        """Append ``rows`` records with the next ids (ids leave gaps, as real ones do)."""
        start = len(self.records)
        self.records += [{"id": 3 * i + 1, "a": i / 4, "c": "xyz"[i % 3]} for i in range(start, start + rows)]

    def options(self, **overrides: Any) -> dict[str, Any]:
        """Options reading this endpoint with the token from DRIFTD_TEST_TOKEN."""
        return {"url": self.url, "records_path": "data.items", "cursor_field": "id",
                "auth_header": "X-Api-Key", "auth_env": "DRIFTD_TEST_TOKEN", **overrides}

    def stop(self) -> None:
        """Shut the server down and free its port."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    monkeypatch.setenv("DRIFTD_TEST_TOKEN", TOKEN)
    served = Endpoint()
    yield served
    served.stop()


def test_passes_the_conformance_suite(endpoint: Endpoint) -> None:
    check_connector(lambda: HttpConnector(endpoint.options()), endpoint.write, total_rows=40)


def test_cursor_and_limit_are_sent_as_query_parameters(endpoint: Endpoint) -> None:
    endpoint.write(5)
    connector = HttpConnector(endpoint.options(url=endpoint.url + "?site=north"))
    first = connector.fetch(None, 2)
    second = connector.fetch(json.loads(json.dumps(first.cursor)), 2)
    connector.close()
    assert first.cursor == 4 and second.cursor == 10
    assert second.table.column_names == ["id", "a", "c"] and second.table.column("id").to_pylist() == [7, 10]
    assert endpoint.requests == [{"site": ["north"], "limit": ["2"]},
                                 {"site": ["north"], "after": ["4"], "limit": ["2"]}]


def test_a_top_level_list_and_no_limit_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    class ListHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = json.dumps([{"ts": f"2026-03-0{i}", "v": i} for i in range(1, 6)]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ListHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        connector = HttpConnector({"url": f"http://127.0.0.1:{server.server_address[1]}/",
                                   "cursor_field": "ts", "limit_param": None})
        batch = connector.fetch(None, 3)  # the endpoint ignores limits: the extra records wait
        connector.close()
    finally:
        server.shutdown()
        server.server_close()
    assert batch.table.column("v").to_pylist() == [1, 2, 3] and batch.cursor == "2026-03-03"


def test_a_wrong_token_is_an_error_without_the_token(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint.write(3)
    monkeypatch.setenv("DRIFTD_TEST_TOKEN", "wrong-secret-value")
    connector = HttpConnector(endpoint.options())
    with pytest.raises(ConnectorError) as caught:
        connector.fetch(None, 10)  # the server echoes the bad key back in its body
    connector.close()
    message = str(caught.value)
    assert "HTTP 401" in message and "bad key" in message
    assert "wrong-secret-value" not in message and TOKEN not in message


def test_an_unset_token_variable_is_named(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTD_TEST_TOKEN")
    connector = HttpConnector(endpoint.options())
    with pytest.raises(ConnectorOptionsError, match="auth_env.*DRIFTD_TEST_TOKEN is not set"):
        connector.fetch(None, 10)
    connector.close()


def test_responses_of_the_wrong_shape_are_errors(endpoint: Endpoint) -> None:
    endpoint.write(3)
    for options, match in [({"records_path": "data.rows"}, "no 'data.rows'"),
                           ({"records_path": None}, "expected a list of JSON objects"),
                           ({"cursor_field": "ts"}, "record 2 of the response has no scalar 'ts'"),
                           ({"url": endpoint.url.replace("readings", "missing")}, "HTTP 404")]:
        connector = HttpConnector(endpoint.options(**options))
        with pytest.raises(ConnectorError, match=match):
            connector.fetch(None, 10)
        connector.close()


def test_building_never_connects_and_a_down_server_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTD_TEST_TOKEN", TOKEN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = HttpConnector({"url": f"http://user:pw-in-url@127.0.0.1:{port}/v1?api_key=k-in-query",
                               "cursor_field": "id", "auth_header": "X-Api-Key", "auth_env": "DRIFTD_TEST_TOKEN"})
    with pytest.raises(ConnectorError) as caught:
        connector.fetch(5, 10)
    connector.close()
    message = str(caught.value)
    assert f"http source http://127.0.0.1:{port}/v1: ConnectError" in message
    assert not any(secret in message for secret in (TOKEN, "pw-in-url", "k-in-query"))


def test_an_empty_endpoint_keeps_the_cursor(endpoint: Endpoint) -> None:
    connector = HttpConnector(endpoint.options())
    table, cursor = drain(connector, 41, 10)
    connector.close()
    assert table.num_rows == 0 and cursor == 41


def test_bad_options_are_rejected() -> None:
    base = {"url": "http://127.0.0.1:9/x", "cursor_field": "id"}
    check_bad_options(HttpConnector, [
        ("url", {"cursor_field": "id"}),
        ("url", {**base, "url": "ftp://example.org/x"}),
        ("url", {**base, "url": "not a url"}),
        ("cursor_field", {"url": base["url"]}),
        ("auth_env", {**base, "auth_header": "Authorization"}),
        ("auth_header", {**base, "auth_env": "TOKEN"}),
        ("timeout", {**base, "timeout": 0}),
        ("records_path", {**base, "records_path": ""}),
        ("bogus", {**base, "bogus": 1}),
    ])


def test_a_field_that_turns_to_text_mid_stream_never_stalls_the_monitor(
        endpoint: Endpoint, sqlite_url: str, tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Numbers while rows wait for a window, then records whose ``a`` is text (issue 14): no stall, every
    record counted, the text counted as invalid values of ``a`` (the same root fix as for the files)."""
    from monitor.metrics import Metrics
    from tests.helpers import make_runner, monitor_config, write_csv

    reference = pa.table({"a": [i / 4 for i in range(100)], "c": ["xyz"[i % 3] for i in range(100)]})
    config = monitor_config(
        source={"type": "http", "options": endpoint.options()},
        features={"numeric": ["a"], "categorical": ["c"]},
        reference={"path": str(write_csv(tmp_path / "reference.csv", reference))},
        window={"rows": 40}, max_rows=50,
    )
    metrics = Metrics()
    runner = make_runner(config, sqlite_url, metrics)
    endpoint.write(50)
    assert [w.rows for w in runner.tick().windows] == [40]  # 10 records wait, ``a`` read as numbers
    start = len(endpoint.records)
    endpoint.write(30)
    for record in endpoint.records[start::10]:
        record["a"] = "sensor offline"
    report = runner.tick()
    assert [w.rows for w in report.windows] == [40] and report.windows[0].missing_features == []
    assert runner.store.count_rows(runner.name) == 80
    assert metrics.registry.get_sample_value("driftd_invalid_values_total", {"monitor": "m", "feature": "a"}) == 3
    assert "monitor m: feature 'a': 3 value(s) are not numbers (e.g. 'sensor offline')" in caplog.text
    runner.close()
    runner.store.close()

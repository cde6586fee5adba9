"""The webhook and command adapters: hand the drift event to an outside pipeline or program."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow.parquet as pq
import pytest

from monitor.adaptation.contract import AdaptationCancelled, AdaptationContext, AdapterError
from plugins.adapters.command import Command
from plugins.adapters.webhook import SIGNATURE_HEADER, Webhook, event_body
from tests.adapt_support import context, domain

SECRET = "s3cr3t-token-value"
HMAC_KEY = "hmac-key-value"


@pytest.fixture
def ctx(tmp_path: Path) -> AdaptationContext:
    """Three features; the target has 6 rows, 2 of them labelled."""
    rng = np.random.default_rng(0)
    source = domain(rng.normal(size=(10, 3)), np.arange(10) % 2)
    labelled = np.array([True, False, False, True, False, False])
    target = domain(rng.normal(1.0, 2.0, size=(6, 3)), np.array([1, 0, 0, 0, 1, 1]), labelled)
    return context(tmp_path / "work", None, source, target)


# ---- webhook ------------------------------------------------------------------------------------

class Pipeline(BaseHTTPRequestHandler):
    """A training pipeline: /ok answers JSON, /fail 500, /slow too late, /big a large answer."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path == "/slow":
            time.sleep(1.0)
        if self.path == "/fail":
            self._answer(500, b"training queue full: " + self.headers.get("Authorization", "").encode(), "text/plain")
        elif self.path == "/big":
            self._answer(200, json.dumps({"id": "run-9", "log": "x" * 20_000}).encode(), "application/json")
        else:
            self._answer(202, json.dumps({"run_url": "https://ci.example/runs/17", "queued": True}).encode(),
                         "application/json")

    def _answer(self, status: int, body: bytes, kind: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (the timeout test)
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def pipeline() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A real HTTP server on 127.0.0.1 (port 0) in a thread; yields its URL and the requests."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (Pipeline,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE_TOKEN", f"Bearer {SECRET}")
    monkeypatch.setenv("PIPELINE_HMAC", HMAC_KEY)


def _webhook(url: str, **options: Any) -> Webhook:
    return Webhook({"url": url, "headers_env": {"Authorization": "PIPELINE_TOKEN"},
                    "hmac_secret_env": "PIPELINE_HMAC", **options})


def test_webhook_posts_the_event_signed(ctx: AdaptationContext, pipeline, secrets) -> None:
    url, received = pipeline
    result = _webhook(f"{url}/ok").adapt(ctx)
    (request,) = received
    body = json.loads(request["body"])
    assert body["monitor"] == "m"
    assert body["event"] == {"id": 7, "window_seq": 42, "drift_share": 0.25, "features": ["x2"], "measures": ["ks"]}
    assert body["target"]["rows"] == 6 and body["target"]["labelled_rows"] == 2
    assert body["target"]["feature_names"] == ["x0", "x1", "x2"]
    assert body["target"]["features"]["x0"]["mean"] == pytest.approx(ctx.target.features[:, 0].mean())
    assert body["target"]["features"]["x2"]["std"] == pytest.approx(ctx.target.features[:, 2].std())
    assert body["source"]["rows"] == 10 and body["model"] is None
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["headers"]["Content-Type"] == "application/json"
    expected = hmac.new(HMAC_KEY.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"][SIGNATURE_HEADER] == f"sha256={expected}"
    assert (result.remedy, result.assumption, result.passed) == ("external", "none", None)
    assert result.artifact == "https://ci.example/runs/17"
    assert result.details["status"] == 202 and result.details["elapsed"] >= 0
    assert result.details["response"] == {"run_url": "https://ci.example/runs/17", "queued": True}
    summary = json.dumps(result.summary())
    assert SECRET not in summary and HMAC_KEY not in summary


def test_webhook_truncates_a_large_answer(ctx: AdaptationContext, pipeline, secrets) -> None:
    url, _ = pipeline
    result = _webhook(f"{url}/big").adapt(ctx)
    assert result.artifact == "run-9"
    assert "response" not in result.details
    assert len(result.details["response_text"]) <= 4097


def test_webhook_non_2xx_is_an_error_without_the_secret(ctx: AdaptationContext, pipeline, secrets) -> None:
    url, _ = pipeline
    with pytest.raises(AdapterError, match="HTTP 500 Internal Server Error: training queue full") as error:
        _webhook(f"{url}/fail").adapt(ctx)
    assert SECRET not in str(error.value) and "***" in str(error.value)


def test_webhook_timeout(ctx: AdaptationContext, pipeline, secrets) -> None:
    url, _ = pipeline
    started = time.monotonic()
    with pytest.raises(AdapterError, match=r"no answer within 0.2s \(timeout\)"):
        _webhook(f"{url}/slow", timeout=0.2).adapt(ctx)
    assert time.monotonic() - started < 0.9


def test_webhook_connection_refused(ctx: AdaptationContext, secrets) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AdapterError, match="ConnectError") as error:
        _webhook(f"http://127.0.0.1:{port}/x", timeout=2).adapt(ctx)
    assert SECRET not in str(error.value)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http://"])
def test_webhook_refuses_other_schemes(url: str) -> None:
    with pytest.raises(AdapterError, match="webhook adapter: option 'url'"):
        Webhook({"url": url})


def test_webhook_missing_environment_variable_is_named(ctx: AdaptationContext, pipeline, monkeypatch) -> None:
    monkeypatch.delenv("PIPELINE_TOKEN", raising=False)
    with pytest.raises(AdapterError, match="environment variable PIPELINE_TOKEN is not set"):
        _webhook(f"{pipeline[0]}/ok").adapt(ctx)
    assert pipeline[1] == []


def test_event_body_describes_the_model(ctx: AdaptationContext) -> None:
    from monitor.adaptation.model import AdaptedModel, SklearnModel
    from sklearn.dummy import DummyClassifier

    ctx.model = AdaptedModel(SklearnModel(DummyClassifier().fit(ctx.source.features, ctx.source.labels)),
                             prior_ratios=np.ones(2))
    model = event_body(ctx)["model"]
    assert model == {"class": "AdaptedModel", "base_class": "SklearnModel", "classes": [0, 1],
                     "input_map": False, "prior_ratios": True}


# ---- command ------------------------------------------------------------------------------------

def _python(code: str, *args: str, **options: Any) -> Command:
    return Command({"argv": [sys.executable, "-c", textwrap.dedent(code), *args], **options})


def test_command_success_reads_inputs_and_result(ctx: AdaptationContext) -> None:
    script = """
        import json, os, sys
        import pyarrow.parquet as pq
        event = json.load(sys.stdin)
        assert event == json.load(open(os.environ["DRIFTD_EVENT"]))
        target = pq.read_table(os.environ["DRIFTD_TARGET"]).to_pydict()
        source = pq.read_table(os.environ["DRIFTD_SOURCE"])
        result = {"artifact": "s3://models/m/17", "metrics": {"target_rows": len(target["x0"]),
                  "labels": target["label"], "source_rows": source.num_rows, "extra": os.environ["EXTRA"],
                  "cwd": os.getcwd(), "monitor": event["monitor"]}}
        json.dump(result, open(os.path.join(os.environ["DRIFTD_WORKDIR"], "result.json"), "w"))
        print("trained")
    """
    result = _python(script, env={"EXTRA": 5}).adapt(ctx)
    assert (result.remedy, result.assumption, result.passed) == ("external", "none", None)
    assert result.artifact == "s3://models/m/17"
    metrics = result.details["metrics"]
    assert metrics["labels"] == [1, None, None, 0, None, None]
    assert (metrics["target_rows"], metrics["source_rows"], metrics["extra"]) == (6, 10, "5")
    assert Path(metrics["cwd"]) == ctx.workdir.resolve() and metrics["monitor"] == "m"
    assert result.details["exit_code"] == 0 and result.details["stdout_tail"] == "trained"
    written = pq.read_table(ctx.workdir / "target.parquet")
    np.testing.assert_array_equal(np.column_stack([written[n].to_numpy() for n in ("x0", "x1", "x2")]),
                                  ctx.target.features)


def test_command_gets_only_the_basic_environment_unless_told(ctx: AdaptationContext, monkeypatch) -> None:
    monkeypatch.setenv("DRIFTD_DATABASE_PASSWORD", SECRET)
    script = "import json, os; print(json.dumps(sorted(os.environ)))"
    inherited = json.loads(_python(script, inherit_env=True).adapt(ctx).details["stdout_tail"])
    kept = json.loads(_python(script, env={"ONLY": "this"}).adapt(ctx).details["stdout_tail"])
    assert "DRIFTD_DATABASE_PASSWORD" in inherited
    assert "DRIFTD_DATABASE_PASSWORD" not in kept and "ONLY" in kept and "DRIFTD_TARGET" in kept
    assert set(kept) <= {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "ONLY", "DRIFTD_EVENT", "DRIFTD_TARGET",
                         "DRIFTD_SOURCE", "DRIFTD_WORKDIR", "LC_CTYPE"}


def test_command_stdout_tail_is_bounded(ctx: AdaptationContext) -> None:
    result = _python("print('a' * 100_000); print('the end')").adapt(ctx)
    assert len(result.details["stdout_tail"]) <= 4096
    assert result.details["stdout_tail"].endswith("the end")
    assert result.artifact is None and "metrics" not in result.details


def test_command_non_zero_exit_quotes_stderr(ctx: AdaptationContext) -> None:
    script = "import sys; sys.stderr.write('x' * 10_000 + 'CUDA out of memory'); sys.exit(3)"
    with pytest.raises(AdapterError, match="exited with 3; stderr: x+CUDA out of memory$") as error:
        _python(script).adapt(ctx)
    assert len(str(error.value)) < 2200


def test_command_timeout_kills_the_whole_process_group(ctx: AdaptationContext, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """
    started = time.monotonic()
    with pytest.raises(AdapterError, match=r"timed out after 1s"):
        _python(script, timeout=1).adapt(ctx)
    assert time.monotonic() - started < 5
    assert _gone(int(pid_file.read_text()))


def test_command_cancellation_kills_it(ctx: AdaptationContext) -> None:
    timer = threading.Timer(0.3, ctx.cancelled.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(AdaptationCancelled):
            _python("import time; time.sleep(60)").adapt(ctx)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5


def test_command_runs_without_a_shell(ctx: AdaptationContext) -> None:
    args = ["a; touch pwned", "$(touch pwned2)", "`id`", "*"]
    result = _python("import sys, json; print(json.dumps(sys.argv[1:]))", *args).adapt(ctx)
    assert json.loads(result.details["stdout_tail"]) == args
    assert not any(ctx.workdir.glob("pwned*"))


def test_command_missing_program(ctx: AdaptationContext) -> None:
    with pytest.raises(AdapterError, match="cannot start '/no/such/program'"):
        Command({"argv": ["/no/such/program"]}).adapt(ctx)


def test_command_bad_result_json(ctx: AdaptationContext) -> None:
    script = "import os; open(os.environ['DRIFTD_WORKDIR'] + '/result.json', 'w').write('{not json')"
    with pytest.raises(AdapterError, match="result.json is not valid JSON"):
        _python(script).adapt(ctx)


@pytest.mark.parametrize("options, option", [({"argv": []}, "argv"), ({}, "argv"),
                                             ({"argv": ["x"], "timeout": 0}, "timeout"),
                                             ({"argv": ["x"], "shell": True}, "shell")])
def test_command_bad_options_are_named(options: dict[str, Any], option: str) -> None:
    with pytest.raises(AdapterError, match=f"command adapter: option '{option}'"):
        Command(options)


def _gone(pid: int, wait: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
                    return True
        except FileNotFoundError:
            return True
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.05)
    return False

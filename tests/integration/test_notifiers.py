"""Notifiers, end to end: configured, fed by the outbox after the tick's commit, delivered to real
local servers (an HTTP server for the webhooks, aiosmtpd for email), retried after failures,
with the event's stable id and without leaking a secret."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import logging
import subprocess
import sys
import time
from email import policy
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.plugins import PluginManager
from tests.conftest import require_module, under_ci
from tests.e2e.conftest import free_port
from tests.helpers import sample_table, write_csv
from tests.servers.http_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _monitor(tmp_path: Path, name: str, **extra: Any) -> dict[str, Any]:
    data = tmp_path / name
    write_csv(data / "part-0.csv", sample_table(50, seed=2))
    write_csv(data / "part-1.csv", sample_table(50, seed=3, shift=4.0, start_id=50))
    return {"name": name, "source": {"type": "files", "options": {"path": str(data)}},
            "features": {"numeric": ["a", "b"]}, "window": {"rows": 50}, "measures": ["ks"],
            "reference": {"path": str(write_csv(tmp_path / "ref.csv", sample_table(200, seed=1)))}, **extra}


def _daemon(tmp_path: Path, notifiers: list[dict[str, Any]], monitors: list[dict[str, Any]],
            environ: dict[str, str]) -> Daemon:
    raw = {"storage": {"url": f"sqlite:///{tmp_path / 'driftd.db'}"}, "server": {"enabled": False},
           "outbox": {"retry_base": "10ms", "retry_cap": "50ms"}, "notifiers": notifiers, "monitors": monitors}
    daemon = Daemon(build_config(raw, "test", environ=environ), PluginManager(environ={}, load_entry_points=False))
    daemon.prepare()
    return daemon


def _outbox(daemon: Daemon) -> list[dict[str, Any]]:
    return list(reversed(daemon.store.outbox_messages()))


def test_webhook_slack_and_alertmanager_get_each_event_once_with_its_id(
        tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_KEY", "s3cret-hmac-key")
    monkeypatch.setenv("HOOK_TOKEN", "Bearer t0ken-value")
    notifiers = [
        {"type": "webhook", "name": "ci", "events": ["drift_detected", "window_evaluated"],
         "options": {"url": f"{receiver.url}/hook", "hmac_secret_env": "HOOK_KEY",
                     "headers_env": {"Authorization": "HOOK_TOKEN"}}},
        {"type": "slack", "options": {"url": "${SLACK_URL}", "channel": "#drift"}},
        {"type": "alertmanager", "options": {"url": receiver.url, "labels": {"team": "data"}}},
    ]
    monitors = [_monitor(tmp_path, "orders"),
                _monitor(tmp_path, "quiet", notifiers=[]),  # this monitor opts out of every notifier
                _monitor(tmp_path, "windows", notifiers=[{"name": "ci", "events": ["window_evaluated"]}])]
    daemon = _daemon(tmp_path, notifiers, monitors, {"SLACK_URL": f"{receiver.url}/slack?token=xyz"})
    try:
        assert {name: report.state for name, report in daemon.tick_all().items()} == {
            "orders": "drift", "quiet": "drift", "windows": "drift"}
        assert receiver.requests == [], "nothing is sent before the dispatcher runs (after the commit)"
        # orders: 2 windows and the drift to ci, the drift to slack and to alertmanager; windows: 2 windows to ci
        assert daemon.outbox.drain() == 2 + 1 + 1 + 1 + 2
    finally:
        daemon.stop()
    messages = _outbox(daemon)
    assert {(m["monitor"], m["kind"], m["target"]) for m in messages} == {
        ("orders", "window_evaluated", "notifier:ci"), ("orders", "drift_detected", "notifier:ci"),
        ("orders", "drift_detected", "notifier:slack"), ("orders", "drift_detected", "notifier:alertmanager"),
        ("windows", "window_evaluated", "notifier:ci")}
    assert all(m["state"] == "delivered" for m in messages)
    drift_id = next(m["event_id"] for m in messages if m["kind"] == "drift_detected")

    hooks = receiver.at("/hook")
    assert len(hooks) == 5
    for request in hooks:
        body, headers = request["body"], request["headers"]
        event = json.loads(body)
        assert headers["Idempotency-Key"] == headers["X-Driftd-Event-Id"] == event["id"]
        assert headers["X-Driftd-Event"] == event["type"] and headers["Authorization"] == "Bearer t0ken-value"
        expected = "sha256=" + hmac.new(b"s3cret-hmac-key", body, hashlib.sha256).hexdigest()
        assert headers["X-Driftd-Signature"] == expected
    drift = next(json.loads(r["body"]) for r in hooks if json.loads(r["body"])["type"] == "drift_detected")
    assert drift["id"] == drift_id and drift["monitor"] == "orders" and drift["attempt"] == 1
    assert drift["data"]["window_seq"] == 2 and drift["data"]["features"] == ["a"]
    assert [(d["feature"], d["kind"]) for d in drift["data"]["diagnoses"]] == [("a", "location")]

    [slack] = receiver.at("/slack?token=xyz")
    message = json.loads(slack["body"])
    assert message["channel"] == "#drift" and "DRIFT on monitor orders in window 2" in message["text"]
    assert "\n• a: mean up" in message["text"], message["text"]
    assert slack["headers"]["X-Driftd-Event-Id"] == drift_id

    [alert_request] = receiver.at("/api/v2/alerts")
    [alert] = json.loads(alert_request["body"])
    assert alert["labels"] == {"alertname": "DriftdDriftDetected", "monitor": "orders", "severity": "warning",
                               "team": "data"}
    assert alert["annotations"]["event_id"] == drift_id and alert["startsAt"] < alert["endsAt"]


def test_a_failing_destination_is_retried_with_backoff_until_delivered(
        tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="driftd")
    receiver.fail = 3
    daemon = _daemon(tmp_path, [{"type": "webhook", "options": {"url": f"{receiver.url}/hook?key=sekret"}}],
                     [_monitor(tmp_path, "orders")], {})
    try:
        daemon.tick_all()
        assert daemon.outbox.run_once() == 0
        [message] = _outbox(daemon)
        assert message["state"] == "pending" and message["attempts"] == 1 and "HTTP 503" in message["last_error"]
        deadline = time.monotonic() + 10
        while _outbox(daemon)[0]["state"] != "delivered" and time.monotonic() < deadline:
            daemon.outbox.drain()
            time.sleep(0.02)
        assert daemon.metrics.registry.get_sample_value("driftd_outbox_failures_total",
                                                        {"target": "notifier:webhook"}) == 3
    finally:
        daemon.stop()
    [message] = _outbox(daemon)
    assert message["state"] == "delivered" and message["attempts"] == 3
    ids = {r["headers"]["X-Driftd-Event-Id"] for r in receiver.requests}
    assert ids == {message["event_id"]} and len(receiver.requests) == 4  # 3 refused, then delivered
    assert "sekret" not in caplog.text and "sekret" not in (message["last_error"] or "")
    assert caplog.text.count("delivery to notifier:webhook failed") == 1, "logged once per change, not per retry"


def test_events_of_a_removed_notifier_are_dropped_with_a_log_line(
        tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="driftd")
    daemon = _daemon(tmp_path, [{"type": "webhook", "options": {"url": f"{receiver.url}/hook"}}],
                     [_monitor(tmp_path, "orders")], {})
    try:
        daemon.tick_all()
        daemon.notifiers.configure(daemon.config.model_copy(update={"notifiers": []}))
        daemon.outbox.drain()
    finally:
        daemon.stop()
    [message] = _outbox(daemon)
    assert message["state"] == "dropped" and "no longer configured" in message["last_error"]
    assert "drift_detected event" in caplog.text and "dropped" in caplog.text and receiver.requests == []


def test_config_validate_names_the_notifier_and_the_option_and_hides_secrets(tmp_path: Path) -> None:
    monitor = _monitor(tmp_path, "orders")
    cases = [
        ({"type": "pager", "name": "oncall"}, ["notifier 'oncall': unknown notifier type 'pager'", "slack"]),
        ({"type": "slack", "options": {"url": "${SLACK_URL}", "colour": "red"}},
         ["notifier 'slack'", "option 'colour' is unknown"]),
        ({"type": "webhook", "options": {"url": "ftp://hooks.example/${SLACK_URL}"}},
         ["notifier 'webhook'", "option 'url'"]),
        ({"type": "email", "name": "mail", "options": {"host": "smtp", "sender": "d@example.com", "to": ["ops"]}},
         ["notifier 'mail'", "option 'to'"]),
    ]
    for notifier, expected in cases:
        path = tmp_path / "driftd.yaml"
        path.write_text(json.dumps({"notifiers": [notifier], "monitors": [monitor]}), encoding="utf-8")
        result = CliRunner(env={"SLACK_URL": "https://hooks.example/T0/B0/very-secret-token"}).invoke(
            main, ["config", "validate", str(path)])
        assert result.exit_code == 2, result.output
        for text in expected:
            assert text in result.output, (text, result.output)
        assert "very-secret-token" not in result.output
    path.write_text(json.dumps({"notifiers": [{"type": "slack"}],
                                "monitors": [{**monitor, "notifiers": ["slak"]}]}), encoding="utf-8")
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 2 and "monitor 'orders': notifiers: no notifier named 'slak'" in result.output


# ---- email over a real SMTP server -----------------------------------------------------------

@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """aiosmtpd as its own process: STARTTLS required, then AUTH; the certificate for 127.0.0.1."""
    require_module("aiosmtpd")
    cert, key, folder = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "mail"
    folder.mkdir()
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                           "-out", str(cert)], capture_output=True, timeout=60)
    if made.returncode != 0:
        if under_ci():
            pytest.fail(f"openssl could not make a test certificate: {made.stderr.decode()}")
        pytest.skip("openssl is not available")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.servers.smtp_server", str(port), str(folder),
                                str(cert), str(key), "driftd", "mail-pa55word"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield {"port": port, "folder": folder, "cert": cert}
    finally:
        process.kill()
        process.wait(10)


def test_email_goes_over_starttls_with_auth_to_a_real_smtp_server(
        tmp_path: Path, smtp_server: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="driftd")
    options = {"host": "127.0.0.1", "port": smtp_server["port"], "username": "driftd", "password": "${SMTP_PASSWORD}",
               "sender": "driftd@example.com", "to": ["ops@example.com", "data@example.com"],
               "ca_file": str(smtp_server["cert"])}
    notifiers = [{"type": "email", "name": "mail", "options": options},
                 {"type": "email", "name": "wrong-password", "options": {**options, "password": "nope-nope"}}]
    daemon = _daemon(tmp_path, notifiers, [_monitor(tmp_path, "orders")], {"SMTP_PASSWORD": "mail-pa55word"})
    try:
        daemon.tick_all()
        assert daemon.outbox.drain(timeout=30) == 1
    finally:
        daemon.stop()
    [delivered, refused] = sorted(_outbox(daemon), key=lambda m: m["target"])
    assert delivered["target"] == "notifier:mail" and delivered["state"] == "delivered"
    assert refused["state"] == "pending" and "SMTPAuthenticationError" in refused["last_error"]
    assert "nope-nope" not in refused["last_error"] and "nope-nope" not in caplog.text
    mails = sorted(smtp_server["folder"].glob("*.eml"))
    assert len(mails) == 1
    mail = email.message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert mail["X-Driftd-Event-Id"] == delivered["event_id"]
    assert mail["Message-ID"] == f"<{delivered['event_id']}@driftd>"
    assert "DRIFT on monitor orders in window 2" in mail["Subject"]
    assert mail["To"] == "ops@example.com, data@example.com"
    assert '"window_seq": 2' in mail.get_content()
    content = mail.get_content().replace("\r\n", "\n")
    assert "What changed:\n- a: mean up" in content, content


def test_email_refuses_to_send_a_password_in_clear_text() -> None:
    plugins = PluginManager(environ={}, load_entry_points=False)
    with pytest.raises(Exception, match="clear text"):
        plugins.provided["notifiers"]["email"]({"host": "h", "security": "none", "username": "u", "password": "p",
                                                "sender": "a@b.c", "to": ["d@e.f"]})

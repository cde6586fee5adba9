"""Hostile configuration: numbers that pass a loose check and crash later, booleans taken for numbers,
YAML that expands without bound, huge values in error lines, and secrets in malformed URLs."""

from __future__ import annotations

import logging
import math
import time
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel

from monitor.config import ConfigError, DriftdConfig, build_config, load_config, parse_duration
from monitor.config.loading import MAX_BYTES
from monitor.config.values import MAX_DURATION, Duration
from monitor.daemon.engine import MonitorError, MonitorRunner
from monitor.logs import JsonFormatter, TextFormatter
from monitor.plugins import PluginManager
from monitor.redact import mask_urls
from monitor.store import Store


def monitor(**changes: Any) -> dict[str, Any]:
    """A valid monitor, with ``changes`` merged one level deep (``window={"rows": x}``)."""
    base: dict[str, Any] = {"name": "orders", "source": {"type": "synthetic"},
                            "features": {"numeric": ["temperature"], "categorical": ["site"]},
                            "window": {"rows": 500}, "reference": {"first_rows": 1000}}
    for key, value in changes.items():
        base[key] = {**base[key], **value} if isinstance(base.get(key), dict) and isinstance(value, dict) else value
    return base


def error_for(raw: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as raised:
        build_config(raw, "hostile.yaml", environ=environ or {})
    return str(raised.value)


# ---- every number finite and within a stated range -------------------------------------------


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    found, todo = [], [root]
    while todo:
        model = todo.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            todo += [inner for inner in _inner(field.annotation) if isinstance(inner, type)
                     and issubclass(inner, BaseModel)]
    return found


def _inner(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _inner(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        return [inner for arg in typing.get_args(annotation) for inner in _inner(arg)]
    return [annotation]


def _constraints(field: Any) -> list[Any]:
    """A field's constraints, also those on a member of a union (``Annotated[float, Field(ge=0)] | None``)."""
    found = list(field.metadata)
    for arg in typing.get_args(field.annotation):
        found += [item for meta in getattr(arg, "__metadata__", ()) for item in getattr(meta, "metadata", [meta])]
    return found


def _is_duration(field: Any) -> bool:
    """A field typed ``Duration`` (or ``Duration | None``): parse_duration bounds it."""
    validators = [*field.metadata, *(item for arg in typing.get_args(field.annotation)
                                     for item in getattr(arg, "__metadata__", ()))]
    return field.annotation in (Duration, Duration | None) or any(
        getattr(item, "func", None) is parse_duration for item in validators)


def test_every_number_in_the_configuration_has_a_lower_and_an_upper_bound() -> None:
    """A new numeric field cannot forget its range: a duration (1 ms..3650 d) or explicit bounds."""
    unbounded = []
    for model in _models(DriftdConfig):
        for name, field in model.model_fields.items():
            kinds = _inner(field.annotation)
            if _is_duration(field) or not {int, float} & set(kinds):
                continue
            metadata = _constraints(field)
            low = any(isinstance(item, (Ge, Gt)) for item in metadata)
            high = any(isinstance(item, (Le, Lt)) for item in metadata)
            if not (low and high):
                unbounded.append(f"{model.__name__}.{name}")
    assert unbounded == []


@pytest.mark.parametrize(("changes", "key"), [
    ({"schedule": {"interval": math.inf}}, "schedule.interval"),
    ({"schedule": {"interval": math.nan}}, "schedule.interval"),
    ({"schedule": {"interval": "99999999999d"}}, "schedule.interval"),
    ({"schedule": {"interval": "1e400"}}, "schedule.interval"),
    ({"schedule": {"interval": "0.0001ms"}}, "schedule.interval"),
    ({"fetch_timeout": math.inf}, "fetch_timeout"),
    ({"fetch_timeout": "3651d"}, "fetch_timeout"),
    ({"measures": {"ks": {"threshold": math.nan}}}, "measures.ks.threshold"),
    ({"measures": {"psi": {"threshold": -math.inf}}}, "measures.psi.threshold"),
    ({"window": {"rows": None, "span": math.inf, "timestamp": "ts"}}, "window.span"),
    ({"drift": {"share": math.nan}}, "drift.share"),
    ({"drift": {"sequential": {"delta": math.inf}}}, "drift.sequential.delta"),
    ({"reference": {"first_rows": None, "max_rows": 10**30, "path": "ref.csv"}}, "reference.max_rows"),
    ({"max_rows": 10**12}, "max_rows"),
    ({"drift": {"consecutive": 10**9}}, "drift.consecutive"),
])
def test_a_number_that_would_crash_the_run_is_refused_at_validation(changes: dict[str, Any], key: str) -> None:
    message = error_for({"monitors": [monitor(**changes)]})
    assert f"monitor 'orders': {key}:" in message


@pytest.mark.parametrize(("section", "key", "value"), [
    ("storage", "lease", math.nan), ("storage", "lease", "1e9d"), ("metrics", "max_features", 10**12),
    ("adaptation", "stop_timeout", math.inf), ("adaptation", "workers", 0),
])
def test_top_level_numbers_are_bounded_too(section: str, key: str, value: Any) -> None:
    assert f"{section}.{key}:" in error_for({section: {key: value}})


@pytest.mark.parametrize(("changes", "key"), [
    ({"window": {"rows": True}}, "window.rows"),
    ({"max_rows": True}, "max_rows"),
    ({"reference": {"bins": False}}, "reference.bins"),
    ({"measures": {"ks": {"threshold": True}}}, "measures.ks.threshold"),
    ({"schedule": {"interval": True}}, "schedule.interval"),
    ({"fetch_timeout": False}, "fetch_timeout"),
    ({"drift": {"consecutive": True}}, "drift.consecutive"),
    ({"enabled": 1}, "enabled"),
])
def test_a_boolean_is_not_a_number_and_a_number_is_not_a_boolean(changes: dict[str, Any], key: str) -> None:
    message = error_for({"monitors": [monitor(**changes)]})
    assert f"monitor 'orders': {key}:" in message
    assert "expected a number" in message or "expected true or false" in message


def test_yaml_yes_for_rows_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump({"monitors": [monitor()]}).replace("rows: 500", "rows: yes"))
    with pytest.raises(ConfigError, match=r"window.rows: expected a number, got True \(YAML reads yes/no"):
        load_config(path, environ={})


def test_numbers_from_the_environment_still_parse() -> None:
    config = build_config({"monitors": [monitor(window={"rows": "${ROWS}"}, schedule={"interval": "${EVERY}"})]},
                          "env.yaml", environ={"ROWS": "250", "EVERY": "90s", "DRIFTD_SERVER_PORT": "9200",
                                               "DRIFTD_SERVER_ENABLED": "false"})
    assert config.monitors[0].window.rows == 250 and config.monitors[0].schedule.interval == 90
    assert config.server.port == 9200 and config.server.enabled is False


@pytest.mark.parametrize("value", [math.inf, math.nan, -1, 0, True, "1e400s", "3651d", "soon", None, [1]])
def test_parse_duration_refuses_what_a_timer_cannot_take(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_the_longest_duration_fits_every_timer_the_daemon_uses() -> None:
    import threading
    from datetime import datetime, timedelta, timezone

    assert parse_duration("3650d") == MAX_DURATION <= threading.TIMEOUT_MAX
    assert datetime.now(timezone.utc) + timedelta(seconds=MAX_DURATION)  # no OverflowError


# ---- the same rules for plugin and measure options --------------------------------------------


@pytest.mark.parametrize(("options", "fragment"), [
    ({"url": "sqlite:///x.db", "table": "t", "cursor_column": "id", "pushdown": {"grace": True}},
     "option 'pushdown.grace': expected a number"),
    ({"url": "sqlite:///x.db", "table": "t", "cursor_column": "id", "pushdown": {"max_windows": True}},
     "option 'pushdown.max_windows': expected a number"),
    ({"url": "sqlite:///x.db", "tabel": "t", "cursor_column": "id"}, "did you mean 'table'?"),
])
def test_connector_options_follow_the_same_rules(options: dict[str, Any], fragment: str) -> None:
    from plugins.connectors.sql import SqlConnector

    with pytest.raises(Exception, match=fragment.replace("?", r"\?").replace("(", r"\(")):
        SqlConnector(options)


@pytest.mark.parametrize(("measures", "fragment"), [
    ({"mmd": {"options": {"permutations": True}}}, "option 'permutations': expected a number"),
    ({"c2st": {"options": {"l2": math.nan}}}, "option 'l2': expected a finite number"),
    ({"ks": {"threshold": 5}}, "its threshold is a significance level between 0 and 1"),
])
def test_measure_options_and_test_thresholds_are_checked(measures: dict[str, Any], fragment: str) -> None:
    config = build_config({"monitors": [monitor(measures=measures)]}, "m.yaml", environ={})
    with pytest.raises(MonitorError, match=fragment):
        MonitorRunner.validate(config.monitors[0], PluginManager(load_entry_points=False))


# ---- YAML that expands without bound ---------------------------------------------------------

LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]) + "\n"


@pytest.mark.parametrize(("text", "fragment"), [
    (LAUGHS, "expands to more than 100,000 values"),
    ("monitors: &m [*m]\n", "an alias refers to a value that holds it"),
    ("a: &a {b: [1, {c: *a}]}\n", "an alias refers to a value that holds it"),
])
@pytest.mark.timeout(30)
def test_alias_expansion_is_bounded(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    assert len(text) < 700
    started = time.monotonic()
    with pytest.raises(ConfigError, match=fragment):
        load_config(path, environ={})
    assert time.monotonic() - started < 2


def test_anchors_and_aliases_below_the_bound_still_load(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text("monitors:\n"
                    "  - {name: a, source: &src {type: synthetic}, features: &f {numeric: [temperature]},"
                    " window: {rows: 10}, reference: {first_rows: 20}}\n"
                    "  - {name: b, source: *src, features: *f, window: {rows: 10}, reference: {first_rows: 20}}\n")
    config = load_config(path, environ={})
    assert [m.name for m in config.monitors] == ["a", "b"] and config.monitors[1].source.type == "synthetic"


def test_a_file_larger_than_the_limit_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_BYTES + "\n")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        load_config(path, environ={})


# ---- short lines whatever the input ----------------------------------------------------------


def test_error_lines_stay_short_whatever_the_input() -> None:
    huge = "x" * 20_000
    raw = {"monitors": [monitor(**{huge: 1}, schedule={"interval": huge}, window={"rows": huge})],
           "storage": {"url": 5, huge[:500]: 1}}
    message = error_for(raw)
    lines = message.splitlines()
    assert all(len(line) <= 420 for line in lines), max(len(line) for line in lines)
    assert len(message) < 3_000


def test_many_errors_are_counted_not_all_printed() -> None:
    raw = {"monitors": [monitor(name=f"m{i}", window={"rows": -1}) for i in range(60)]}
    lines = error_for(raw).splitlines()
    assert len(lines) <= 22 and lines[-1].strip().startswith("… and 40 more problems")


def test_a_typo_gets_the_key_it_probably_meant() -> None:
    raw = {"monitors": [{**monitor(), "windw": {"rows": 5}, "interval": "5m"}], "storage": {"leese": 3}}
    raw["monitors"][0].pop("window")
    message = error_for(raw)
    assert "monitor 'orders': windw: unknown key; did you mean 'window'?" in message
    assert "monitor 'orders': interval: unknown key; it belongs under 'schedule' (schedule.interval)" in message
    assert "storage.leese: unknown key; did you mean 'lease'?" in message


def test_a_duration_error_shows_the_value_unless_it_came_from_the_environment() -> None:
    shown = error_for({"monitors": [monitor(schedule={"interval": "10 parsecs"})]})
    assert "schedule.interval: not a duration: '10 parsecs'" in shown
    hidden = error_for({"monitors": [monitor(schedule={"interval": "${EVERY}"})]}, {"EVERY": "tok-3x9-secret"})
    assert "tok-3x9-secret" not in hidden and "schedule.interval: not a duration: <value hidden" in hidden


# ---- secrets in malformed URLs ----------------------------------------------------------------

PASSWORDS = ["p#ss", "p@ss", "pa/ss", "p?ss", "p@s/s#w", "a:b@c", "plain"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_is_masked_from_the_scheme_to_the_hosts_at_however_malformed(password: str) -> None:
    for scheme, user, host in (("postgresql+psycopg", "reader", "db.example:5432/prod"),
                               ("redis", "", "cache:6379/0"), ("nats", "user", "queue:4222")):
        masked = mask_urls(f"cannot reach {scheme}://{user}:{password}@{host} now")
        assert masked == f"cannot reach {scheme}://{user}:***@{host} now", masked


def test_a_url_without_a_password_is_left_alone() -> None:
    for text in ("sqlite:///driftd.db", "http://127.0.0.1:9108/metrics", "no url here"):
        assert mask_urls(text) == text


@pytest.mark.parametrize("password", ["p@ss/w#rd", "${PG_PASSWORD}"])
def test_store_describe_and_every_log_line_mask_it(password: str, tmp_path: Path) -> None:
    store = Store(f"postgresql+psycopg://reader:{password}@127.0.0.1:1/prod")
    assert "reader:***@127.0.0.1:1/prod" in store.describe() and password not in store.describe()
    record = logging.LogRecord("driftd", logging.ERROR, __file__, 1, "storage %s down",
                               (f"postgresql://reader:{password}@h/db",), None)
    for formatter in (TextFormatter(), JsonFormatter()):
        assert password not in formatter.format(record)


def test_config_errors_never_show_an_interpolated_url_password() -> None:
    secret = "pg#Secret@7/x"
    message = error_for({"storage": {"url": "${URL}", "lease": "${URL}"}, "monitors": [
        monitor(source={"type": "synthetic", "options": {"url": "${URL}"}})]},
        {"URL": f"postgresql://reader:{secret}@db/prod"})
    assert "Secret" not in message and "storage.lease:" in message


def _option_fields() -> list[tuple[type[BaseModel], str, set[Any]]]:
    """(options model, field, plain types) of every number in a first-party connector's options."""
    import importlib
    import inspect

    found = []
    for module_name in ("sql", "redis_streams", "nats_jetstream", "mqtt", "http", "files", "synthetic"):
        module = importlib.import_module(f"plugins.connectors.{module_name}")
        for model in vars(module).values():
            if inspect.isclass(model) and issubclass(model, BaseModel) and model.__module__ == module.__name__:
                for name, field in model.model_fields.items():
                    kinds = {kind for kind in _inner(field.annotation) if kind in (int, float)}
                    if kinds and name not in {"port"}:
                        found.append((model, field.alias or name, kinds))
    return found


@pytest.mark.parametrize(("model", "option", "kinds"), _option_fields(),
                         ids=lambda item: getattr(item, "__name__", str(item)))
def test_every_number_in_a_connectors_options_is_bounded_and_no_boolean(model: type[BaseModel], option: str,
                                                                        kinds: set[Any]) -> None:
    from monitor.connector import ConnectorOptionsError, parse_options

    for value in (True, 10**20 if int in kinds and float not in kinds else 1e300, math.inf):
        with pytest.raises(ConnectorOptionsError) as raised:
            parse_options(model, {option: value}, "test")
        assert f"option '{option}'" in str(raised.value), (value, str(raised.value))


@pytest.mark.parametrize(("connector", "options", "fragment"), [
    ("sql", {"url": "postgresql://u:p@h:99999/db", "table": "t", "cursor_column": "id"}, "port must be a number"),
    ("redis_streams", {"url": "redis://h:0/0", "stream": "s"}, "port must be a number"),
    ("nats_jetstream", {"servers": ["nats://h:70000"], "stream": "s"}, "port must be a number"),
    ("http", {"url": "http://h:123456/rows", "cursor_field": "id"}, "port must be a number"),
    ("http", {"url": "http://h/ro ws", "cursor_field": "id"}, "no spaces"),
])
def test_the_parts_of_a_url_are_checked(connector: str, options: dict[str, Any], fragment: str) -> None:
    from monitor.plugins import PluginManager

    with pytest.raises(Exception, match=fragment) as raised:
        PluginManager(load_entry_points=False).connector(connector if connector != "nats_jetstream" else "nats",
                                                        options)
    assert ":p@" not in str(raised.value)


def test_a_storage_url_port_out_of_range_is_refused_at_validation() -> None:
    message = error_for({"storage": {"url": "postgresql://u:pw@db:99999/prod"}})
    assert "storage.url: the URL's port must be a number from 1 to 65535, got '99999'" in message
    assert ":pw@" not in message

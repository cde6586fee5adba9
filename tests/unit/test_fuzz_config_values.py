"""Property tests (hypothesis) on the config loader's numbers and durations: whatever value lands in a
numeric field, validation either refuses it with a short line naming the key, or accepts a finite value
within the field's range that every timer and the scheduler can take."""

from __future__ import annotations

import math
import os
import threading
import typing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from annotated_types import Ge, Gt, Le, Lt
from apscheduler.triggers.interval import IntervalTrigger
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, DriftdConfig, build_config, load_config
from monitor.config.values import MAX_DURATION, MIN_DURATION

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=os.environ.get("CI", "").lower() in {"1", "true", "yes"})

#: (path in the file, duration?) of every number and duration a monitor or the file holds.
FIELDS: list[tuple[tuple[str, ...], bool]] = [
    (("monitors", "schedule", "interval"), True), (("monitors", "fetch_timeout"), True),
    (("monitors", "window", "span"), True), (("storage", "lease"), True), (("adaptation", "stop_timeout"), True),
    (("monitors", "window", "rows"), False), (("monitors", "max_rows"), False),
    (("monitors", "reference", "bins"), False), (("monitors", "reference", "max_rows"), False),
    (("monitors", "measures", "ks", "threshold"), False), (("monitors", "measures", "psi", "threshold"), False),
    (("monitors", "drift", "share"), False), (("monitors", "drift", "consecutive"), False),
    (("monitors", "drift", "min_rows"), False), (("monitors", "drift", "sequential", "delta"), False),
    (("monitors", "drift", "sequential", "threshold"), False), (("server", "port"), False),
    (("metrics", "max_features"), False), (("adaptation", "workers"), False),
]

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.tuples(st.integers(0, 10**6), st.integers(-400, 400)).map(lambda p: f"{p[0]}e{p[1]}"),
    st.sampled_from(["nan", "inf", "-inf", "Infinity", ".inf", "1_000", "0x10", " 5 ", "", "1.", ".5", "5.0"]),
)
VALUES = st.one_of(
    st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10**40, 10**40),
    NUMBER_TEXT,
    st.tuples(NUMBER_TEXT, st.sampled_from(["ms", "s", "m", "h", "d", " d", "w", "y", "sec"])).map("".join),
)


def _place(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    monitor: dict[str, Any] = {"name": "m", "source": {"type": "synthetic"}, "features": {"numeric": ["x"]},
                               "window": {"rows": 100}, "reference": {"first_rows": 200}}
    raw: dict[str, Any] = {"monitors": [monitor]}
    if path[-1] == "span":
        monitor["window"] = {"span": value, "timestamp": "ts"}
        return raw
    if "sequential" in path:
        monitor["drift"] = {"sequential": {path[-1]: value}}
        return raw
    target = monitor if path[0] == "monitors" else raw
    for key in path[1:-1] if path[0] == "monitors" else path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    return raw


def _field(config: DriftdConfig, path: tuple[str, ...]) -> tuple[Any, Any]:
    """(the value, the model field) at ``path`` of a validated configuration."""
    node: Any = config.monitors[0] if path[0] == "monitors" else config
    for key in path[1:-1] if path[0] == "monitors" else path[:-1]:
        node = node[key] if isinstance(node, dict) else getattr(node, key)
    return getattr(node, path[-1]), type(node).model_fields[path[-1]]


def _check_accepted(value: Any, field: Any, duration: bool) -> None:
    if value is None or value == "auto":  # an optional field left unset, or a threshold from the calibration
        return
    assert not isinstance(value, bool)
    assert isinstance(value, (int, float)) and math.isfinite(value)
    if duration:
        assert MIN_DURATION <= value <= MAX_DURATION
        assert value <= threading.TIMEOUT_MAX
        datetime.now(timezone.utc) + timedelta(seconds=value)  # no OverflowError
        trigger = IntervalTrigger(seconds=value)
        assert trigger.get_next_fire_time(None, datetime.now(timezone.utc)) is not None
        return
    bounds = list(field.metadata) + [item for arg in typing.get_args(field.annotation)  # Annotated union members
                                     for meta in getattr(arg, "__metadata__", ())
                                     for item in getattr(meta, "metadata", [meta])]
    for bound in bounds:
        if isinstance(bound, Ge):
            assert value >= bound.ge
        elif isinstance(bound, Gt):
            assert value > bound.gt
        elif isinstance(bound, Le):
            assert value <= bound.le
        elif isinstance(bound, Lt):
            assert value < bound.lt


@FUZZ
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_a_number_is_refused_in_one_short_line_or_usable(field: tuple[tuple[str, ...], bool], value: Any) -> None:
    path, duration = field
    try:
        config = build_config(_place(path, value), "fuzz.yaml", environ={})
    except ConfigError as error:
        lines = str(error).splitlines()
        assert all(len(line) <= 420 for line in lines) and len(lines) <= 22
        assert path[-1] in str(error), str(error)
        return
    accepted, model_field = _field(config, path)
    _check_accepted(accepted, model_field, duration)


@FUZZ
@given(field=st.sampled_from(FIELDS), text=NUMBER_TEXT)
def test_the_same_from_yaml_text(tmp_path: Path, field: tuple[tuple[str, ...], bool], text: str) -> None:
    """Numbers as YAML scalars (``.inf``, ``1e400``, ``yes``): the loader's own parsing first."""
    path, duration = field
    document = yaml.safe_dump(_place(path, "__VALUE__")).replace("__VALUE__", text.strip() or "''")
    file = tmp_path / "fuzz.yaml"
    file.write_text(document)
    try:
        config = load_config(file, environ={})
    except ConfigError:
        return
    accepted, model_field = _field(config, path)
    _check_accepted(accepted, model_field, duration)

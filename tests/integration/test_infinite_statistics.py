"""An infinite statistic is a real, maximal result: it votes, is stored (SQLite and PostgreSQL),
exported as +Inf, and served by the JSON API as the string "Infinity" (JSON has no infinity)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pytest
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from monitor.config import build_config
from monitor.daemon import Daemon
from monitor.http.server import API_PREFIX, create_app
from monitor.plugins import PluginManager
from monitor.store.migrate import upgrade
from tests.helpers import sample_table, write_csv


@pytest.fixture
def daemon(db_url: str, tmp_path: Path) -> Iterator[Daemon]:
    # `a` reads exactly 1.0 in the reference and exactly 5.0 in the window: Welch's t is infinite.
    table = sample_table(1500, seed=1)
    table = table.set_column(table.schema.get_field_index("a"), "a", pa.array([1.0] * 1000 + [5.0] * 500))
    write_csv(tmp_path / "data" / "part-1.csv", table)
    config = build_config({"storage": {"url": db_url}, "monitors": [{
        "name": "m", "source": {"type": "files", "options": {"path": str(tmp_path / "data")}},
        "features": {"numeric": ["a", "b"], "categorical": ["c"]}, "window": {"rows": 500},
        "reference": {"first_rows": 1000}, "measures": ["welch_t", "chi_square"]}]}, "test", environ={})
    built = Daemon(config, PluginManager(load_entry_points=False))
    upgrade(built.store.engine)
    built.prepare()
    built.tick_all()  # the reference
    built.tick_all()  # one window
    yield built
    built.stop()


def test_an_infinite_statistic_votes_is_stored_exported_and_served(daemon: Daemon) -> None:
    window, results = daemon.store.window_results("m", 1)  # read back from the database
    [welch] = [r for r in results if (r.feature, r.measure) == ("a", "welch_t")]
    assert welch.value == math.inf and welch.p_value == 0.0 and welch.drifted
    assert window.drifted_features == ["a"] and window.state == "drift"

    exposition = generate_latest(daemon.metrics.registry).decode()
    assert 'driftd_feature_divergence{feature="a",measure="welch_t",monitor="m"} +Inf' in exposition

    client = TestClient(create_app(daemon.metrics, daemon.readiness, api=_api(daemon)))
    body = client.get(f"{API_PREFIX}/monitors/m/windows/1/results", params={"feature": "a"}).json()
    assert [(r["measure"], r["value"], r["drifted"]) for r in body["results"]] == [("welch_t", "Infinity", True)]
    assert float(body["results"][0]["value"]) == math.inf
    document = client.get(f"{API_PREFIX}/openapi.json").json()
    value = document["components"]["schemas"]["Result"]["properties"]["value"]
    assert {"type": "string", "enum": ["Infinity", "-Infinity"]} in value["oneOf"]


def _api(daemon: Daemon):  # noqa: ANN202
    from monitor.http.api import build_api

    return build_api(daemon)

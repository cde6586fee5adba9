"""The README's commands, config example and plugin example stay true."""

from __future__ import annotations

import re
import types
from pathlib import Path

import yaml

from monitor.config import build_config
from monitor.plugins import PluginManager

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _blocks("sh")[1].strip()
    assert "pytest" in test_command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_opens_with_the_two_setup_commands() -> None:
    run_command, test_command = (block.strip() for block in _blocks("sh")[:2])
    assert run_command.endswith("driftd run") and "pip install ." in run_command
    assert test_command.endswith("pytest") and "'.[dev]'" in test_command
    assert README.index(run_command) < README.index("## What driftd is")


def test_config_example_is_valid() -> None:
    example = next(block for block in _blocks("yaml") if "monitors:" in block)
    config = build_config(yaml.safe_load(example), "README example", environ={})
    monitor = config.monitor("payments")
    assert monitor.drift.consecutive == 2 and monitor.schedule.interval == 60
    assert config.storage.url == "sqlite:///driftd.db"


def _python_block(marker: str) -> str:
    """The README's python block that contains ``marker`` (blocks are found by content, not position)."""
    found = [block for block in _blocks("python") if marker in block]
    assert len(found) == 1, f"expected one python block with {marker!r}, found {len(found)}"
    return found[0]


def _plugin_module() -> types.ModuleType:
    module = types.ModuleType("my_driftd_plugin")
    exec(compile(_python_block("# my_driftd_plugin.py"), "README plugin example", "exec"), module.__dict__)  # noqa: S102
    return module


def test_python_api_example_names_real_things() -> None:
    import monitor.compare
    from monitor import divergence

    example = _blocks("python")[0]
    assert "from monitor.compare import compare" in example and hasattr(monitor.compare, "compare")
    assert divergence.compare is monitor.compare.compare, "the earlier import path keeps working"


def test_plugin_kit_example_passes_on_the_plugin_example() -> None:
    namespace = dict(vars(_plugin_module()))
    exec(compile(_python_block("def test_counter_connector"), "README kit example", "exec"), namespace)  # noqa: S102
    namespace["test_counter_connector"]()


def test_plugin_example_works() -> None:
    module = _plugin_module()
    manager = PluginManager(environ={}, load_entry_points=False)
    manager.register(module, "my_driftd_plugin")
    connector = manager.connector("counter", {})
    first = connector.fetch(None, 3)
    second = connector.fetch(first.cursor, 2)
    assert first.table.column("x").to_pylist() == [0, 1, 2]
    assert second.table.column("x").to_pylist() == [3, 4]
    assert manager.info["my_driftd_plugin"].provides == {"connectors": ["counter"]}


def test_every_alert_has_a_runbook_heading() -> None:
    from tests.unit.test_deploy_files import RUNBOOK_ANCHORS

    headings = re.findall(r"^#### Alert: (\w+)$", README, flags=re.M)
    assert {f"alert-{name.lower()}" for name in headings} == RUNBOOK_ANCHORS


def test_rabbitmq_source_example_is_valid() -> None:
    from plugins.connectors.rabbitmq import RabbitMqOptions

    example = next(block for block in _blocks("yaml") if "type: rabbitmq" in block)
    config = build_config({"monitors": [{"name": "m", **yaml.safe_load(example),
                                         "features": {"numeric": ["x"]}, "window": {"rows": 10},
                                         "reference": {"first_rows": 10}}]},
                          "README example", environ={"AMQP_PASSWORD": "secret"})
    options = RabbitMqOptions.model_validate(config.monitors[0].source.options)
    assert options.stream and options.queue == "sensor-readings" and options.url.endswith("@mq:5672/%2F")


def _measure_module() -> types.ModuleType:
    module = types.ModuleType("readme_measure")
    block = next(block for block in _blocks("python") if "class MeanShift(Measure)" in block)
    exec(compile(block, "README measure example", "exec"), module.__dict__)  # noqa: S102
    return module


def test_measure_guide_example_passes_check_measure_and_works_in_compare() -> None:
    import numpy as np
    import pyarrow as pa

    from monitor.compare import compare
    from monitor.divergence import MeasureRegistry
    from monitor.testing import check_measure

    module = _measure_module()
    check_measure(module.MeanShift())
    check_measure(module.MeanShift(trim=0.1))
    manager = PluginManager(environ={}, load_entry_points=False)
    manager.register(module, "readme_measure")
    registry = MeasureRegistry(manager.provided["divergences"])
    rng = np.random.default_rng(0)
    reference, live = pa.table({"x": rng.normal(0, 1, 2000)}), pa.table({"x": rng.normal(1, 1, 500)})
    report = compare(reference, live, {"mean_shift": {"options": {"trim": 0.1}}}, registry=registry)
    assert report.drift and 0.8 < report.results[0].value < 1.2


def test_plugins_section_example_is_valid() -> None:
    example = next(block for block in _blocks("yaml") if block.startswith("plugins:"))
    config = build_config(yaml.safe_load(example), "README example", environ={"EXAMPLE_API_KEY": "k"})
    assert config.plugins == {"example": {"api_key": "k", "level": 2}}


def test_adapt_example_runs_and_says_what_it_prints() -> None:
    """The Python adaptation example runs as written, and its comments state what it prints."""
    import contextlib
    import io

    example = _python_block("SklearnModel, adapt")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README adapt example", "exec"), {})  # noqa: S102
    lines = printed.getvalue().splitlines()
    promised = [line.split("# prints: ", 1)[1].strip() for line in example.splitlines() if "# prints: " in line]
    assert promised and all(any(line.startswith(text) for line in lines) for text in promised), lines

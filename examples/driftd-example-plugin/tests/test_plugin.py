"""The example plugin's own tests: the conformance suites of ``monitor.testing``, nothing else of driftd's."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

from driftd_example_plugin import (
    JsonLinesNotifier,
    MeanAlignment,
    OutsideRange,
    RandomWalkConnector,
    driftd_adapters,
    driftd_connectors,
    driftd_divergences,
    driftd_notifiers,
)
from monitor.testing import (
    adaptation_context,
    check_adapter,
    check_adapter_bad_options,
    check_bad_options,
    check_connector,
    check_measure,
    check_notifier_bad_options,
    sample_event,
)


def test_the_hooks_register_both_classes() -> None:
    assert driftd_connectors() == {"random_walk": RandomWalkConnector}
    assert driftd_adapters() == {"mean_alignment": MeanAlignment}
    assert driftd_notifiers() == {"jsonl_file": JsonLinesNotifier}
    assert isinstance(driftd_divergences()["outside_range"], OutsideRange)


@pytest.mark.parametrize("total_rows", [0, 1500])
def test_the_connector_passes_the_conformance_suite(total_rows: int) -> None:
    check_connector(lambda: RandomWalkConnector({"seed": 4, "drift": 0.1, "total_rows": total_rows}),
                    total_rows=total_rows)


def test_the_connector_rejects_bad_options() -> None:
    check_bad_options(RandomWalkConnector, [("step", {"step": 0}), ("seed", {"seed": "x"}), ("speed", {"speed": 1})])


def test_the_adapter_passes_the_adapter_conformance_suite() -> None:
    result = check_adapter(lambda: MeanAlignment({}), lambda: adaptation_context("affine"))
    assert result.remedy == "feature_map" and result.model is not None
    check_adapter_bad_options(MeanAlignment, [("min_rows", {"min_rows": 1}), ("speed", {"speed": 2})])


def test_the_notifier_writes_each_event_once_even_when_it_comes_again(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    JsonLinesNotifier({"path": str(path)}).notify(sample_event("drift_detected", event_id="5f0c"))
    # a new process gets the same event again (a crash came between its delivery and its record)
    JsonLinesNotifier({"path": str(path)}).notify(sample_event("drift_detected", event_id="5f0c", attempt=2))
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["5f0c"]


def test_the_notifier_rejects_bad_options() -> None:
    check_notifier_bad_options(JsonLinesNotifier, [("path", {"path": ""}), ("colour", {"path": "x", "colour": 1})])


def test_the_measure_passes_check_measure() -> None:
    check_measure(OutsideRange())
    check_measure(OutsideRange(margin=0.05))
    with pytest.raises(ValueError, match="margin"):
        OutsideRange(margin=1.5)

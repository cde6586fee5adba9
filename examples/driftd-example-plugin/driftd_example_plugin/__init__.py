"""An example driftd plugin: registers the ``random_walk`` connector, the ``outside_range`` measure, the
``mean_alignment`` adapter and the ``jsonl_file`` notifier through the ``driftd`` entry points."""

from __future__ import annotations

from typing import Mapping

from monitor.plugin import Connector, Measure, Notifier, hookimpl

from driftd_example_plugin.jsonl_notifier import JsonLinesNotifier
from driftd_example_plugin.mean_alignment import MeanAlignment
from driftd_example_plugin.outside_range import OutsideRange
from driftd_example_plugin.random_walk import RandomWalkConnector

__all__ = ["JsonLinesNotifier", "MeanAlignment", "OutsideRange", "RandomWalkConnector", "driftd_adapters",
           "driftd_connectors", "driftd_divergences", "driftd_notifiers"]


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``random_walk`` connector."""
    return {"random_walk": RandomWalkConnector}


@hookimpl
def driftd_divergences() -> Mapping[str, Measure]:
    """Register the ``outside_range`` measure (an instance; options build a new one)."""
    return {"outside_range": OutsideRange()}


@hookimpl
def driftd_adapters() -> Mapping[str, type]:
    """Register the ``mean_alignment`` adapter."""
    return {"mean_alignment": MeanAlignment}


@hookimpl
def driftd_notifiers() -> Mapping[str, type[Notifier]]:
    """Register the ``jsonl_file`` notifier."""
    return {"jsonl_file": JsonLinesNotifier}

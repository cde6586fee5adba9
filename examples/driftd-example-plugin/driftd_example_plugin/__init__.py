"""An example driftd plugin: registers the ``random_walk`` connector and the ``mean_alignment`` adapter
through the ``driftd`` entry points."""

from __future__ import annotations

from typing import Mapping

from monitor.plugin import Connector, hookimpl

from driftd_example_plugin.mean_alignment import MeanAlignment
from driftd_example_plugin.random_walk import RandomWalkConnector

__all__ = ["MeanAlignment", "RandomWalkConnector", "driftd_adapters", "driftd_connectors"]


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``random_walk`` connector."""
    return {"random_walk": RandomWalkConnector}


@hookimpl
def driftd_adapters() -> Mapping[str, type]:
    """Register the ``mean_alignment`` adapter."""
    return {"mean_alignment": MeanAlignment}

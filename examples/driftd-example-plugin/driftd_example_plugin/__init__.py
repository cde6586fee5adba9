"""An example driftd plugin: registers the ``random_walk`` connector through the ``driftd`` entry points."""

from __future__ import annotations

from typing import Mapping

from monitor.connector import Connector
from monitor.hookspecs import hookimpl

from driftd_example_plugin.random_walk import RandomWalkConnector

__all__ = ["RandomWalkConnector", "driftd_connectors"]


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``random_walk`` connector."""
    return {"random_walk": RandomWalkConnector}

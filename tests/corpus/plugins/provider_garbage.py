"""A plugin whose driftd_connectors hook returns a list, not a mapping."""
from monitor.hookspecs import hookimpl


@hookimpl
def driftd_connectors():  # noqa: ANN201
    return ["corpus_listed"]

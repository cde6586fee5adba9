"""A connector whose __init__ raises."""
from monitor.connector import Connector
from monitor.hookspecs import hookimpl


class InitRaises(Connector):
    def __init__(self, options):  # noqa: ANN001
        raise RuntimeError("corpus: cannot start")

    def fetch(self, cursor, max_rows):  # noqa: ANN001, ANN201
        raise AssertionError("never built")


@hookimpl
def driftd_connectors():  # noqa: ANN201
    return {"corpus_init_raises": InitRaises}

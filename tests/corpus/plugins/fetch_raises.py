"""A connector whose fetch always raises."""
from monitor.connector import Connector
from monitor.hookspecs import hookimpl


class Raising(Connector):
    def fetch(self, cursor, max_rows):  # noqa: ANN001, ANN201
        raise RuntimeError("corpus: the source exploded")


@hookimpl
def driftd_connectors():  # noqa: ANN201
    return {"corpus_raises": Raising}

"""A connector whose fetch returns something that is not a Batch."""
from monitor.connector import Connector
from monitor.hookspecs import hookimpl


class Garbage(Connector):
    def fetch(self, cursor, max_rows):  # noqa: ANN001, ANN201
        return {"rows": [1, 2, 3]}


@hookimpl
def driftd_connectors():  # noqa: ANN201
    return {"corpus_garbage": Garbage}

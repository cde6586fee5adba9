"""A connector that returns a Batch whose table is not an Arrow table."""
from monitor.connector import Batch, Connector
from monitor.hookspecs import hookimpl


class BadTable(Connector):
    def fetch(self, cursor, max_rows):  # noqa: ANN001, ANN201
        return Batch([{"a": 1.0}], {"offset": 1})


@hookimpl
def driftd_connectors():  # noqa: ANN201
    return {"corpus_bad_table": BadTable}

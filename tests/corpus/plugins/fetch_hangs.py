"""A connector whose fetch blocks far longer than any tick should take (released by the test)."""
import threading

from monitor.connector import Connector
from monitor.hookspecs import hookimpl

RELEASE = threading.Event()


class Hangs(Connector):
    def fetch(self, cursor, max_rows):  # noqa: ANN001, ANN201
        RELEASE.wait(30)
        raise RuntimeError("corpus: released")


@hookimpl
def driftd_connectors():  # noqa: ANN201
    return {"corpus_hangs": Hangs}

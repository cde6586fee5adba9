"""A divergence measure whose score raises."""
from monitor.divergence import Measure
from monitor.hookspecs import hookimpl


class Exploding(Measure):
    name = "corpus_exploding"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.5
    description = "raises on every window"

    def score(self, reference, window):  # noqa: ANN001, ANN201
        raise ZeroDivisionError("corpus: measure blew up")


@hookimpl
def driftd_divergences():  # noqa: ANN201
    return {"corpus_exploding": Exploding()}

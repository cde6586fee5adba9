"""A divergence measure whose score is NaN (no result: a failure with its reason, never "no drift")."""
from monitor.divergence import Measure, Score
from monitor.hookspecs import hookimpl


class NotANumber(Measure):
    name = "corpus_nan"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.5
    description = "always NaN"

    def score(self, reference, window):  # noqa: ANN001, ANN201
        return Score(float("nan"))


@hookimpl
def driftd_divergences():  # noqa: ANN201
    return {"corpus_nan": NotANumber()}

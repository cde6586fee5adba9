"""The ``outside_range`` measure: the share of a window's values outside the range the reference had."""

from __future__ import annotations

from monitor.plugin import FeatureSummary, FeatureWindow, Measure, Score, proportions


class OutsideRange(Measure):
    """Share of window values below the reference minimum or above its maximum (0 when none).

    It reads the window only through ``proportions``: the first and last bins of a numeric reference
    summary hold what falls outside the reference's range, so the measure also works on push-down
    sources (``counts_only``), where the feature arrives as its bins' counts, in bin order.
    """

    name = "outside_range"
    kinds = frozenset({"numeric"})
    is_test = False
    default_threshold = 0.05
    description = "share of window values outside the reference's range"
    counts_only = True

    def __init__(self, margin: float = 0.0) -> None:
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), got {margin}")
        self.margin = margin

    def score(self, reference: FeatureSummary, window: FeatureWindow) -> Score:
        """The share outside the range, less ``margin`` (never below 0)."""
        _, shares = proportions(reference, window)
        return Score(max(0.0, float(shares[0] + shares[-1]) - self.margin))

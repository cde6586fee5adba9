"""Configuration of what explains a window: the shift diagnosis and the data-quality checks."""

from __future__ import annotations

from pydantic import Field

from monitor.config.strict import _Strict


class ExplainConfig(_Strict):
    """Shift diagnosis of each window: what kind of change each feature shows (``monitor.domain.diagnosis``)."""

    enabled: bool = True
    alpha: float = Field(0.01, gt=0, lt=1, description="false-alarm rate of each finding on a feature that did "
                                                        "not change")


class QualityCheckConfig(_Strict):
    """One data-quality check: the level past which it fails, and whether a failure makes its feature drifted."""

    threshold: float | None = Field(None, ge=0, le=1, description="the check's level (default: its own)")
    vote: bool = Field(False, description="a failed check flags its feature as drifted, like a measure")


class QualityConfig(_Strict):
    """The data-quality checks of each window (``monitor.domain.quality``); a check left out is not run."""

    missing_rate: QualityCheckConfig | None = Field(
        None, description="missing values (null, NaN, not a number) vs the reference: Fisher's exact test, "
                          "threshold = significance level (default 0.01)")
    out_of_range: QualityCheckConfig | None = Field(
        None, description="share of a numeric feature's values outside the reference's range (default 0.05)")
    new_category: QualityCheckConfig | None = Field(
        None, description="share of rows in categories the reference never saw (default 0.02)")
    vanished_category: QualityCheckConfig | None = Field(
        None, description="reference share of categories absent from the window, where absence is unlikely "
                          "by chance (default 0.05)")
    constant: QualityCheckConfig | None = Field(
        None, description="a feature with one value in the window that had several in the reference")
    type_changed: QualityCheckConfig | None = Field(
        None, description="share of a feature's values not of its type: a numeric feature's values that are not "
                          "numbers; a categorical feature's values that read as numbers where none of the "
                          "reference's did (default 0.01)")

"""Measure one window against the reference summary: per-feature, per-measure results."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.config import MeasureConfig
from monitor.divergence import (
    NUMPY,
    AnyMeasure,
    Backend,
    CategoricalWindow,
    FeatureWindow,
    MeasureRegistry,
    MultivariateMeasure,
    MultivariateSummary,
    NumericWindow,
    ReferenceSummary,
    Score,
    adjust_p_values,
)
from monitor.domain.records import ALL_FEATURES, ResultRecord
from monitor.domain.reference import numeric_values


@dataclass(frozen=True)
class MeasureSetting:
    """A configured measure with its threshold resolved.

    With ``auto`` (``threshold: auto``) the measure flags a feature when its statistic (the
    result's value, for tests too) crosses that feature's own threshold in ``feature_thresholds``,
    which come from the calibration stored with the reference version (see
    ``monitor.domain.thresholds``); ``threshold`` is then NaN.
    """

    measure: AnyMeasure
    threshold: float
    auto: bool = False
    feature_thresholds: Mapping[str, float] | None = None

    def decide(self, feature: str, score: Score) -> tuple[float, bool]:
        """The threshold that applies to ``feature``, and whether ``score`` (p-value corrected) crosses it.

        ValueError when the measure has ``threshold: auto`` and no calibrated threshold for the feature.
        """
        if not self.auto:
            return self.threshold, bool(self.measure.drifted(score, self.threshold))
        threshold = (self.feature_thresholds or {}).get(feature)
        if threshold is None:
            raise ValueError(f"threshold: auto, but the reference version's calibration has no threshold for "
                             f"feature {feature!r}")
        flagged = score.value > threshold if self.measure.higher_is_drift else score.value < threshold
        return threshold, bool(flagged)


@dataclass(frozen=True)
class WindowEvaluation:
    """Results of one window, which features drifted, and what could not be measured and why."""

    results: list[ResultRecord]
    feature_drifted: dict[str, bool]
    missing: dict[str, str]
    failed_measures: dict[str, str]
    multivariate_drift: bool = False


def resolve_measures(configured: Mapping[str, MeasureConfig], registry: MeasureRegistry) -> list[MeasureSetting]:
    """Look up each configured measure and settle its threshold and options.

    KeyError names an unknown measure; ValueError names options its class does not take.
    """
    settings = []
    for name, config in configured.items():
        measure = registry.get(name)
        if config.options:
            try:
                measure = type(measure)(**config.options)
            except (TypeError, ValueError) as error:
                raise ValueError(f"measure {name!r}: bad options {sorted(config.options)}: {error}") from None
        if config.threshold == "auto":
            settings.append(MeasureSetting(measure, math.nan, auto=True))
            continue
        threshold = measure.default_threshold if config.threshold is None else config.threshold
        settings.append(MeasureSetting(measure, threshold))
    return settings


def prepare_feature(rows: pa.Table, name: str, kind: str) -> FeatureWindow:
    """The prepared window of one feature; KeyError when absent, TypeError when of a wrong type."""
    if name not in rows.column_names:
        raise KeyError(f"column {name!r} is missing")
    column = rows.column(name)
    if kind == "numeric":
        return NumericWindow(numeric_values(column, name))
    try:
        strings = pc.cast(column, pa.string())
    except pa.ArrowNotImplementedError:
        raise TypeError(f"column {name!r} holds {column.type}, which has no text form") from None
    return CategoricalWindow.from_arrow(strings)


def evaluate_window(
    rows: pa.Table,
    kinds: Mapping[str, str],
    summary: ReferenceSummary,
    settings: list[MeasureSetting],
    correction: str,
    *,
    backend: Backend = NUMPY,
    min_rows: int = 0,
) -> WindowEvaluation:
    """Score every feature with every measure that takes its kind; correct p-values across features.

    Each feature's column is converted and counted once. Multivariate measures score the rows
    whose numeric features are all finite, as one result under the feature name ``*``. A distance
    (not a test) computed from fewer than ``min_rows`` values is recorded but does not vote: its
    sampling noise alone would cross any fixed threshold (tests account for the sample size).
    """
    windows: dict[str, FeatureWindow] = {}
    missing: dict[str, str] = {}
    for name, kind in kinds.items():
        if name not in summary.features:
            missing[name] = "not in the active reference version"
            continue
        try:
            window = prepare_feature(rows, name, kind)
        except KeyError:
            missing[name] = "column is missing from the source"
            continue
        except TypeError as error:
            missing[name] = str(error)
            continue
        if window.n == 0:
            missing[name] = "no usable values in the window (all null, NaN or inf)"
            continue
        windows[name] = window

    tally = Tally(windows)
    for setting in settings:
        if isinstance(setting.measure, MultivariateMeasure):
            tally.multivariate(setting, lambda setting=setting: _score_multivariate(rows, summary.multivariate,
                                                                                     setting, backend))
            continue
        names = [name for name in windows if kinds[name] in setting.measure.kinds]
        tally.per_feature(setting, [(name, summary.features[name], windows[name]) for name in names],
                          correction, backend, min_rows)
    return tally.evaluation(missing)


class Tally:
    """What scoring one window gathers: every result, each feature's verdict, the measures that failed."""

    def __init__(self, features: Mapping[str, Any]) -> None:
        self.results: list[ResultRecord] = []
        self.drifted = {name: False for name in features}
        self.failed: dict[str, str] = {}
        self.multivariate_drift = False

    def per_feature(self, setting: MeasureSetting, features: list[tuple[str, Any, Any]], correction: str,
                    backend: Backend, min_rows: int) -> None:
        """Score one per-feature measure over ``(name, reference, window)`` triples; a failure is recorded."""
        try:
            scored = score_features(setting, features, correction, backend, min_rows)
        except Exception as error:  # noqa: BLE001 - a plugin measure must not stop the others
            self.fail(setting, f"{type(error).__name__}: {error}")
            return
        for result in scored:
            self.drifted[result.feature] = self.drifted[result.feature] or result.drifted
        self.results.extend(scored)

    def multivariate(self, setting: MeasureSetting, score: Callable[[], ResultRecord]) -> None:
        """Record a multivariate measure's one result, or its failure."""
        try:
            result = score()
        except Exception as error:  # noqa: BLE001 - a plugin measure must not stop the others
            self.fail(setting, f"{type(error).__name__}: {error}")
            return
        self.results.append(result)
        self.multivariate_drift = self.multivariate_drift or result.drifted

    def fail(self, setting: MeasureSetting, reason: str) -> None:
        """A measure produced nothing for this window, and why."""
        self.failed[setting.measure.name] = reason

    def evaluation(self, missing: dict[str, str]) -> WindowEvaluation:
        """The window's evaluation."""
        return WindowEvaluation(self.results, self.drifted, missing, self.failed, self.multivariate_drift)


def score_features(setting: MeasureSetting, features: list[tuple[str, Any, Any]], correction: str,
                   backend: Backend, min_rows: int) -> list[ResultRecord]:
    """One per-feature measure over ``(name, reference, window)`` triples: scores, corrected p-values, verdicts.

    A distance computed from fewer than ``min_rows`` values is recorded but does not vote.
    """
    measure = setting.measure
    scores = measure.score_many([(reference, window) for _, reference, window in features], backend=backend)
    scored = [(name, window, score) for (name, _, window), score in zip(features, scores)
              if math.isfinite(score.value)]
    adjusted = (adjust_p_values([score.p_value for _, _, score in scored], correction)
                if measure.is_test else [None] * len(scored))
    results = []
    for (name, window, score), p_adjusted in zip(scored, adjusted):
        decided = score if p_adjusted is None else type(score)(score.value, float(p_adjusted))
        votes = measure.is_test or window.n >= min_rows
        threshold, flagged = setting.decide(name, decided)
        results.append(ResultRecord(
            feature=name, measure=measure.name, value=float(score.value), p_value=score.p_value,
            p_value_adjusted=None if p_adjusted is None else float(p_adjusted),
            threshold=threshold, drifted=votes and flagged,
        ))
    return results



def _score_multivariate(rows: pa.Table, summary: MultivariateSummary | None, setting: MeasureSetting,
                        backend: Backend) -> ResultRecord:
    if summary is None:
        raise ValueError("the active reference version has no multivariate summary "
                         "(it has no numeric features, or predates it: capture a new reference)")
    missing = [name for name in summary.features if name not in rows.column_names]
    if missing:
        raise ValueError(f"columns {missing} are missing from the source")
    columns = np.column_stack([
        pc.cast(rows.column(name), pa.float64()).to_numpy(zero_copy_only=False) for name in summary.features
    ])
    complete = columns[np.isfinite(columns).all(axis=1)]
    if len(complete) < 2:
        raise ValueError("fewer than 2 rows have every numeric feature finite")
    score = setting.measure.score(summary, complete, backend)
    threshold, flagged = setting.decide(ALL_FEATURES, score)
    return ResultRecord(feature=ALL_FEATURES, measure=setting.measure.name, value=float(score.value),
                        p_value=score.p_value, p_value_adjusted=score.p_value, threshold=threshold,
                        drifted=flagged)

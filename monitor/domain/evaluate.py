"""Measure one window against the reference summary: per-feature, per-measure results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.config import MeasureConfig
from monitor.config.values import check_options, signature_annotations
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
    map_features,
)
from monitor.domain.records import ALL_FEATURES, ResultRecord
from monitor.domain.reference import numeric_values
from monitor.redact import cut


@dataclass(frozen=True)
class MeasureSetting:
    """A configured measure with its threshold resolved, and the smallest effect that may flag drift.

    With ``auto`` (``threshold: auto``) the measure flags a feature when its statistic (the
    result's value, for tests too) crosses that feature's own threshold in ``feature_thresholds``,
    which come from the calibration stored with the reference version (see
    ``monitor.domain.thresholds``); ``threshold`` is then NaN.
    """

    measure: AnyMeasure
    threshold: float
    min_effect: float | None = None
    auto: bool = False
    feature_thresholds: Mapping[str, float] | None = None

    def decide(self, feature: str, score: Score) -> tuple[float, bool]:
        """The threshold that applies to ``feature``, and whether a checked score (p-value corrected) means drift:
        past the threshold and, with ``min_effect``, large enough.

        ValueError when the measure has ``threshold: auto`` and no calibrated threshold for the feature.
        """
        if self.auto:
            threshold = (self.feature_thresholds or {}).get(feature)
            if threshold is None:
                raise ValueError(f"threshold: auto, but the reference version's calibration has no threshold for "
                                 f"feature {feature!r}")
            flagged = score.value > threshold if self.measure.higher_is_drift else score.value < threshold
        else:
            threshold, flagged = self.threshold, self.measure.drifted(score, self.threshold)
        if flagged and self.min_effect is not None:
            flagged = score.value >= self.min_effect if self.measure.higher_is_drift else score.value <= self.min_effect
        return threshold, bool(flagged)


@dataclass(frozen=True)
class MeasureFailure:
    """A result that could not become a verdict: its measure, its feature (``*``: multivariate) and why."""

    measure: str
    feature: str
    reason: str


@dataclass(frozen=True)
class WindowEvaluation:
    """Results of one window, which features drifted, and what could not be measured and why.

    ``failed_measures`` maps each measure that failed on some feature to the reason (per feature
    when they differ); ``failures`` lists every failed (measure, feature). A feature that a failed
    measure leaves without a verdict (no other measure flagged it) is not in ``feature_drifted``
    and is listed in ``missing`` with the reason: a failure is never a "not drifted".
    """

    results: list[ResultRecord]
    feature_drifted: dict[str, bool]
    missing: dict[str, str]
    failed_measures: dict[str, str]
    multivariate_drift: bool = False
    failures: tuple[MeasureFailure, ...] = ()
    #: The prepared windows (counted once; sorted once, and the sorted copy kept only where some measure may
    #: still flag the feature), kept only when asked (``keep_windows``), so that the diagnosis reads them
    #: instead of converting, sorting and merging each column again.
    windows: Mapping[str, FeatureWindow] = field(default_factory=dict, repr=False, compare=False)


def resolve_measures(configured: Mapping[str, MeasureConfig], registry: MeasureRegistry) -> list[MeasureSetting]:
    """Look up each configured measure and settle its threshold, minimum effect and options.

    KeyError names an unknown measure; ValueError names options its class does not take, or a
    ``min_effect`` on a distance (whose threshold already is an effect size).
    """
    settings = []
    for name, config in configured.items():
        measure = registry.get(name)
        if config.options:
            try:
                check_options(config.options, signature_annotations(type(measure).__init__))
                measure = type(measure)(**config.options)
            except (TypeError, ValueError) as error:
                raise ValueError(f"measure {name!r}: bad options {cut(str(sorted(config.options)), 100)}: "
                                 f"{cut(str(error), 200)}") from None
        if config.min_effect is not None and not measure.is_test:
            raise ValueError(f"measure {name!r}: min_effect applies to tests; the threshold of a distance "
                             "already is the effect size that flags drift")
        if config.threshold == "auto":
            settings.append(MeasureSetting(measure, math.nan, config.min_effect, auto=True))
            continue
        threshold = measure.default_threshold if config.threshold is None else config.threshold
        if measure.is_test and not 0 < threshold < 1:
            raise ValueError(f"measure {name!r} is a test: its threshold is a significance level between 0 and 1 "
                             f"(got {threshold:g})")
        settings.append(MeasureSetting(measure, threshold, config.min_effect))
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


def _prepared(rows: pa.Table, name: str, kind: str) -> FeatureWindow | KeyError | TypeError:
    """``prepare_feature``, its KeyError or TypeError returned rather than raised."""
    try:
        return prepare_feature(rows, name, kind)
    except (KeyError, TypeError) as error:
        return error


def evaluate_window(
    rows: pa.Table,
    kinds: Mapping[str, str],
    summary: ReferenceSummary,
    settings: list[MeasureSetting],
    correction: str,
    *,
    backend: Backend = NUMPY,
    min_rows: int = 0,
    keep_windows: bool = False,
) -> WindowEvaluation:
    """Score every feature with every measure that takes its kind; correct p-values across features.

    Each feature's column is converted and counted once. Multivariate measures score the rows
    whose numeric features are all finite, as one result under the feature name ``*``. A distance
    (not a test) computed from fewer than ``min_rows`` values is recorded but does not vote: its
    sampling noise alone would cross any fixed threshold (tests account for the sample size).
    ``keep_windows`` keeps the prepared windows in the evaluation (for ``explain_window``). Numeric features
    are prepared and scored in blocks of ``FEATURE_BLOCK``, each block's sorted copies dropped before the next.
    """
    missing: dict[str, str] = {name: "not in the active reference version"
                               for name in kinds if name not in summary.features}
    per_feature = [setting for setting in settings if not isinstance(setting.measure, MultivariateMeasure)]
    present = [(name, kind) for name, kind in kinds.items() if name in summary.features]
    prepared: dict[str, FeatureWindow] = {}
    scored: list[dict[str, Score | Exception]] = [{} for _ in per_feature]
    for block in feature_blocks(present):
        # columns are converted and counted on the feature pool (Arrow and numpy release the GIL)
        outcomes = map_features(lambda item: _prepared(rows, *item), block, rows.num_rows * len(block))
        usable = []
        for (name, _), window in zip(block, outcomes):
            if isinstance(window, (KeyError, TypeError)) or window.n == 0:
                missing[name] = _unprepared(window)
            else:
                prepared[name] = window
                usable.append(name)
        for setting, scores in zip(per_feature, scored):
            names = [name for name in usable if kinds[name] in setting.measure.kinds]
            scores.update(_score_block(setting, [(name, summary.features[name], prepared[name]) for name in names],
                                       backend))
        # a block's sorted copies go before the next block is sorted; those a verdict may still need stay
        for name in usable:
            window = prepared[name]
            if isinstance(window, NumericWindow) and not (keep_windows and _may_flag(name, per_feature, scored)):
                window.release()
    windows = {name: prepared[name] for name, _ in present if name in prepared}

    tally = Tally(windows)
    for setting in settings:
        if isinstance(setting.measure, MultivariateMeasure):
            tally.multivariate(setting, lambda setting=setting: _score_multivariate(rows, summary.multivariate,
                                                                                     setting, backend))
            continue
        scores = scored[per_feature.index(setting)]
        names = [name for name in windows if name in scores]
        tally.decide(setting, [(name, windows[name], scores[name]) for name in names], correction, min_rows)
    evaluation = tally.evaluation({name: missing[name] for name in kinds if name in missing})
    return replace(evaluation, windows=windows) if keep_windows else evaluation


#: Numeric features are prepared, sorted and scored this many at a time: a block's sorted copies are
#: dropped before the next block is sorted, so a window's memory does not grow with its features.
FEATURE_BLOCK = 12


def feature_blocks(features: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """``(name, kind)`` pairs in blocks: the categorical ones together (counts are small), numeric ones by
    ``FEATURE_BLOCK``."""
    numeric = [item for item in features if item[1] == "numeric"]
    other = [item for item in features if item[1] != "numeric"]
    blocks = [numeric[start:start + FEATURE_BLOCK] for start in range(0, len(numeric), FEATURE_BLOCK)]
    return blocks + ([other] if other else [])


def _unprepared(outcome: object) -> str:
    """Why a feature has no prepared window."""
    if isinstance(outcome, KeyError):
        return "column is missing from the source"
    if isinstance(outcome, TypeError):
        return str(outcome)
    return "no usable values in the window (all null, NaN, inf or not numbers)"


def _score_block(setting: MeasureSetting, features: list[tuple[str, Any, Any]],
                 backend: Backend) -> dict[str, Score | Exception]:
    """One measure's scores of a block's ``(name, reference, window)`` triples, or the error that stopped it."""
    if not features:
        return {}
    try:
        scores = setting.measure.score_many([(reference, window) for _, reference, window in features],
                                            backend=backend)
        if len(scores) != len(features):
            raise ValueError(f"score_many returned {len(scores)} scores for {len(features)} features")
    except Exception as error:  # noqa: BLE001 - a plugin measure must not stop the others
        return {name: error for name, _, _ in features}
    return {name: score for (name, _, _), score in zip(features, scores)}


def _may_flag(name: str, settings: list[MeasureSetting], scored: list[dict[str, Score | Exception]]) -> bool:
    """Whether some measure may still flag ``name``: its uncorrected score flags it (a corrected p-value is never
    smaller), or it cannot tell."""
    for setting, scores in zip(settings, scored):
        score = scores.get(name)
        if score is None:
            continue
        try:
            if unusable(setting.measure, score) is None and setting.decide(name, score)[1]:
                return True
        except Exception:  # noqa: BLE001 - undecidable now: keep what the verdict may need
            return True
    return False


def unusable(measure: AnyMeasure, score: object) -> str | None:
    """Why a measure's score cannot become a verdict, or None when it can.

    The one check every result passes before it may vote (pulled rows, push-down counts and the
    multivariate measures alike): a NaN value, a test without a p-value, or a p-value outside
    0..1 (NaN included) is a failure with its reason. An infinite value is a real, maximal result.
    """
    if not isinstance(score, Score):
        return f"returned a {type(score).__name__}, not a Score"
    try:
        value = float(score.value)
    except (TypeError, ValueError):
        return f"its value {score.value!r} is not a number"
    if math.isnan(value):
        return "its value is NaN"
    if score.p_value is None:
        return "it is a test but returned no p-value" if measure.is_test else None
    try:
        p_value = float(score.p_value)
    except (TypeError, ValueError):
        return f"its p-value {score.p_value!r} is not a number"
    if not 0.0 <= p_value <= 1.0:
        return f"its p-value is {p_value!r}, outside 0..1"
    return None


class Tally:
    """What scoring one window gathers: every result, each feature's verdict, the measures that failed."""

    def __init__(self, features: Mapping[str, Any]) -> None:
        self.results: list[ResultRecord] = []
        self.drifted = {name: False for name in features}
        self.failures: list[MeasureFailure] = []
        self.multivariate_drift = False

    def per_feature(self, setting: MeasureSetting, features: list[tuple[str, Any, Any]], correction: str,
                    backend: Backend, min_rows: int) -> None:
        """Score one per-feature measure over ``(name, reference, window)`` triples; failures are recorded."""
        scores = _score_block(setting, features, backend)
        self.decide(setting, [(name, window, scores[name]) for name, _, window in features], correction, min_rows)

    def decide(self, setting: MeasureSetting, scored: list[tuple[str, Any, Score | Exception]], correction: str,
               min_rows: int) -> None:
        """Verdicts of one measure's ``(name, window, score or error)`` triples, corrected across them."""
        usable = []
        for name, window, score in scored:
            problem = (f"{type(score).__name__}: {score}" if isinstance(score, Exception)
                       else unusable(setting.measure, score))
            if problem is None:
                usable.append((name, window, score))
            else:
                self.fail(setting, problem, [name])
        try:
            decided = decide_features(setting, usable, correction, min_rows)
        except Exception as error:  # noqa: BLE001 - e.g. a plugin's own ``drifted`` that raises
            self.fail(setting, f"{type(error).__name__}: {error}", [name for name, _, _ in usable])
            return
        for result in decided:
            self.drifted[result.feature] = self.drifted[result.feature] or result.drifted
            self.results.append(result)

    def multivariate(self, setting: MeasureSetting, score: Callable[[], Score]) -> None:
        """Record a multivariate measure's one result, or its failure."""
        try:
            scored = score()
        except Exception as error:  # noqa: BLE001 - a plugin measure must not stop the others
            self.fail(setting, f"{type(error).__name__}: {error}", [ALL_FEATURES])
            return
        problem = unusable(setting.measure, scored)
        if problem is not None:
            self.fail(setting, problem, [ALL_FEATURES])
            return
        try:
            threshold, drifted = setting.decide(ALL_FEATURES, scored)
        except Exception as error:  # noqa: BLE001 - e.g. a plugin's own ``drifted`` that raises
            self.fail(setting, f"{type(error).__name__}: {error}", [ALL_FEATURES])
            return
        self.results.append(ResultRecord(
            feature=ALL_FEATURES, measure=setting.measure.name, value=float(scored.value),
            p_value=_float_or_none(scored.p_value), p_value_adjusted=_float_or_none(scored.p_value),
            threshold=threshold, drifted=drifted))
        self.multivariate_drift = self.multivariate_drift or drifted

    def fail(self, setting: MeasureSetting, reason: str, features: list[str] | None = None) -> None:
        """A measure produced no usable result for these features (all it covers when None), and why."""
        for feature in features if features is not None else list(self.drifted) or [ALL_FEATURES]:
            self.failures.append(MeasureFailure(setting.measure.name, feature, reason))

    def evaluation(self, missing: dict[str, str]) -> WindowEvaluation:
        """The window's evaluation: a feature left without a verdict by a failure moves to ``missing``."""
        missing = dict(missing)
        drifted = dict(self.drifted)
        for feature in dict.fromkeys(f.feature for f in self.failures):
            if feature in drifted and not drifted[feature]:
                del drifted[feature]
                why = "; ".join(f"measure {f.measure!r} failed: {f.reason}"
                                for f in self.failures if f.feature == feature)
                missing[feature] = f"no verdict: {why}"
        return WindowEvaluation(self.results, drifted, missing, failed_measures(self.failures),
                                self.multivariate_drift, tuple(self.failures))


def failed_measures(failures: list[MeasureFailure]) -> dict[str, str]:
    """Each failed measure's reason: one line when every feature failed alike, else per feature."""
    reasons: dict[str, dict[str, str]] = {}
    for failure in failures:
        reasons.setdefault(failure.measure, {})[failure.feature] = failure.reason
    return {measure: (next(iter(why.values())) if len(set(why.values())) == 1 and len(why) > 1
                      else "; ".join(f"feature {feature!r}: {reason}" for feature, reason in why.items()))
            for measure, why in reasons.items()}


def decide_features(setting: MeasureSetting, scored: list[tuple[str, Any, Score]], correction: str,
                    min_rows: int) -> list[ResultRecord]:
    """Checked scores of one per-feature measure → corrected p-values and verdicts.

    A distance computed from fewer than ``min_rows`` values is recorded but does not vote.
    """
    measure = setting.measure
    adjusted = (adjust_p_values([float(score.p_value) for _, _, score in scored], correction)
                if measure.is_test else [None] * len(scored))
    results = []
    for (name, window, score), p_adjusted in zip(scored, adjusted):
        decided = Score(float(score.value), _float_or_none(score.p_value if p_adjusted is None else p_adjusted))
        votes = measure.is_test or window.n >= min_rows
        threshold, flagged = setting.decide(name, decided)
        results.append(ResultRecord(
            feature=name, measure=measure.name, value=float(score.value), p_value=_float_or_none(score.p_value),
            p_value_adjusted=None if p_adjusted is None else float(p_adjusted),
            threshold=threshold, drifted=votes and flagged,
        ))
    return results


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _score_multivariate(rows: pa.Table, summary: MultivariateSummary | None, setting: MeasureSetting,
                        backend: Backend) -> Score:
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
    return setting.measure.score(summary, complete, backend)

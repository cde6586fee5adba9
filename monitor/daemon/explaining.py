"""The engine's hook into the shift diagnosis: explain a window, log what changed."""

from __future__ import annotations

import logging
from typing import Mapping

import pyarrow as pa

from monitor.config import MonitorConfig
from monitor.divergence import Backend, ReferenceSummary
from monitor.domain.diagnosis import explain_window
from monitor.domain.evaluate import MeasureSetting, WindowEvaluation
from monitor.domain.quality import type_changes
from monitor.domain.segments import evaluate_segments
from monitor.domain.values import InvalidValues
from monitor.domain.events import json_safe

log = logging.getLogger("driftd.engine")


def explain(config: MonitorConfig, rows: pa.Table, kinds: dict[str, str], summary: ReferenceSummary,
            evaluation: WindowEvaluation, seq: int,
            invalid: Mapping[str, InvalidValues] | None = None) -> list[dict[str, object]]:
    """The window's diagnoses as JSON-ready mappings (none when ``explain.enabled`` is off); each is logged.

    A failed ``type_changed`` quality check adds its own sentence (``invalid``: the window's values that
    were not numbers, per feature).

    A diagnosis that raises is logged and leaves the window without diagnoses: it never stops the window.
    """
    if not config.explain.enabled:
        return []
    drifted = [name for name, flagged in evaluation.feature_drifted.items() if flagged]
    try:
        explanation = explain_window(rows, kinds, summary, drifted, alpha=config.explain.alpha,
                                     windows=evaluation.windows)  # its columns read and sorted once
    except Exception as error:  # noqa: BLE001 - an explanation is extra; the window's verdict stands without it
        log.error("monitor %s window %d: the shift diagnosis failed: %s: %s", config.name, seq,
                  type(error).__name__, error)
        return []
    diagnoses = [*type_changes(rows, evaluation.results, invalid or {}), *explanation.diagnoses]
    for diagnosis in diagnoses:
        log.info("monitor %s window %d: %s [%s]", config.name, seq, diagnosis.sentence, diagnosis.kind)
    return [json_safe(diagnosis.as_dict()) for diagnosis in diagnoses]


def segment_outcomes(config: MonitorConfig, rows: pa.Table, kinds: dict[str, str], summary: ReferenceSummary,
                     settings: list[MeasureSetting], backend: Backend, seq: int) -> list[dict[str, object]]:
    """Each segment's outcome as JSON-ready mappings (none without ``features.segment_by``); drifted ones are logged.

    A reference version stored before ``segment_by`` was set has no segments: said once per window.
    """
    if not config.features.segment_by:
        return []
    if not summary.segments:
        log.warning("monitor %s window %d: segments not measured: the active reference version has none "
                    "(stored before features.segment_by was set: capture it again)", config.name, seq)
        return []
    try:
        outcomes = evaluate_segments(rows, kinds, summary, settings, config.drift.correction,
                                     config.features.segment_by, backend=backend, min_rows=config.drift.min_rows)
    except KeyError as error:
        log.warning("monitor %s window %d: segments not measured: %s", config.name, seq, error.args[0])
        return []
    for outcome in outcomes:
        if outcome.drifted:
            log.warning("monitor %s window %d: segment %s drifted (%s)", config.name, seq, outcome.segment,
                        ", ".join(outcome.drifted_features))
    return [outcome.as_dict() for outcome in outcomes]

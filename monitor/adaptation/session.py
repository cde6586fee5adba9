"""The steps the daemon and ``monitor.adaptation.adapt`` share: each adapter's context and the gate's call."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Sequence

from monitor.adaptation.contract import AdaptationContext, AdaptationResult, Domain, DriftInfo
from monitor.adaptation.gate import GateDecision, GateSplit, judge
from monitor.adaptation.model import Model

#: The gate's defaults, as in the configuration's ``adaptation`` section.
VALIDATION_SHARE = 0.3
MIN_TARGET_LABELS = 30
DECISIVE_TARGET_LABELS = 200
REGRESSION_LOSS = "squared_error"


def adapter_context(monitor: str, event: DriftInfo, split: GateSplit | None, target: Domain, champion: Model | None,
                    workdir: Path, adapter: str, seed: int,
                    cancelled: threading.Event | None = None, artifacts: Path | None = None) -> AdaptationContext:
    """What one adapter sees: the split's training rows only (the gate's held-out rows stay hidden)."""
    ctx = AdaptationContext(
        monitor=monitor, event=event,
        source=split.source_train if split else Domain(target.features[:0], target.feature_names),
        target=split.target if split else target,
        model=champion, workdir=workdir / adapter, log=logging.getLogger(f"driftd.adapter.{adapter}"),
        cancelled=cancelled or threading.Event(), seed=seed, artifacts=artifacts)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    return ctx


def judged(candidates: Sequence[tuple[str, AdaptationResult | None]]) -> list[tuple[str, AdaptationResult]]:
    """The candidates the gate judges: those with a result that assumes something it can check."""
    return [(name, result) for name, result in candidates if result is not None and result.assumption != "none"]


def gate(champion: Model | None, candidates: Sequence[tuple[str, AdaptationResult | None]], split: GateSplit | None,
         seed: int, min_target_labels: int = MIN_TARGET_LABELS,
         decisive_target_labels: int = DECISIVE_TARGET_LABELS,
         regression_loss: str = REGRESSION_LOSS) -> GateDecision | None:
    """The gate's decision over the judged candidates (None when there is nothing to judge)."""
    chosen = judged(candidates)
    if not chosen or champion is None or split is None:
        return None
    return judge(champion, chosen, split, seed=seed, min_target_labels=min_target_labels,
                 decisive_target_labels=decisive_target_labels, regression_loss=regression_loss)

"""``adapt``: what the gate would do with this champion, this source and this target, from Python.

It runs the daemon's steps on in-memory domains: the same held-out split (``split_for_gate`` with
the same share and seed), each adapter with the same context (``session.adapter_context``: the
split's training rows, the target with the gate's rows masked), the same gate call
(``session.gate``). The only differences: no database, no timeout thread, and a bug in an adapter
raises instead of being recorded (an ``AdapterError`` is recorded as the challenger's error, as
the daemon records a failed run).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from monitor.adaptation.contract import AdaptationCancelled, AdaptationResult, Adapter, AdapterError, Domain, DriftInfo
from monitor.adaptation.gate import GateSplit, split_for_gate
from monitor.adaptation.model import Model, ModelLoadError, is_regressor
from monitor.adaptation.session import (
    DECISIVE_TARGET_LABELS,
    MIN_TARGET_LABELS,
    REGRESSION_LOSS,
    VALIDATION_SHARE,
    adapter_context,
    gate,
)


@dataclass
class Challenger:
    """One adapter's outcome: its result (None when it failed), and the gate's verdict on it."""

    name: str
    result: AdaptationResult | None
    error: str | None
    seconds: float

    @property
    def model(self) -> Model | None:
        """The challenger's model (None for a failed run or a remedy without one)."""
        return None if self.result is None else self.result.model

    @property
    def passed(self) -> bool:
        """Whether the gate passed it (the winner is the passed one with the highest estimate)."""
        return bool(self.result is not None and self.result.passed)

    @property
    def scores(self) -> dict[str, float | str]:
        """The gate's scores: estimate, champion_estimate, gain, noise, validator, checks, label check."""
        return {} if self.result is None else dict(self.result.scores)

    @property
    def reason(self) -> str:
        """Why it passed, was rejected, or failed."""
        if self.result is None:
            return f"failed: {self.error}"
        return self.result.reason or ""


@dataclass
class Decision:
    """The gate's decision: the winner (None: keep the champion), every challenger, the reason."""

    winner: str | None
    model: Model
    challengers: list[Challenger]
    reason: str
    needs_labels: bool
    split: GateSplit

    def challenger(self, name: str) -> Challenger:
        """The challenger of this name."""
        found = [challenger for challenger in self.challengers if challenger.name == name]
        if not found:
            raise KeyError(f"no challenger named {name!r} (have {', '.join(c.name for c in self.challengers)})")
        return found[0]


def adapt(champion: Model, source: Domain, target: Domain, adapters: Sequence[Adapter | tuple[str, Adapter]],
          seed: int = 0, validation_share: float = VALIDATION_SHARE, min_target_labels: int = MIN_TARGET_LABELS,
          decisive_target_labels: int = DECISIVE_TARGET_LABELS, regression_loss: str = REGRESSION_LOSS,
          workdir: Path | None = None, monitor: str = "python") -> Decision:
    """Run ``adapters`` on the champion's source and target domains and let the gate decide, as the daemon does.

    ``source`` carries labels on every row; ``target`` carries labels where they have arrived (``labelled``).
    An adapter is an instance (named by its ``type_name``) or a ``(name, instance)`` pair.
    """
    if source.labels is None or source.labelled_rows == 0:
        raise ValueError("the source domain needs labels (the rows the champion was trained on)")
    if source.feature_names != target.feature_names:
        raise ValueError(f"source and target columns differ: {source.feature_names} != {target.feature_names}")
    named = [item if isinstance(item, tuple) else (item.type_name, item) for item in adapters]
    names = [name for name, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"adapter names must be unique (got {names}); pass (name, adapter) pairs")
    split = split_for_gate(source, target, validation_share, seed, stratify=not is_regressor(champion))
    event = DriftInfo(0, 0, 1.0, source.feature_names)
    challengers = []
    with tempfile.TemporaryDirectory(prefix="driftd-adapt-") as scratch:
        root = workdir or Path(scratch)
        for name, adapter in named:
            ctx = adapter_context(monitor, event, split, split.target, champion, root, name, seed)
            started = time.perf_counter()
            try:
                result, error = adapter.adapt(ctx), None
            except (AdapterError, ModelLoadError, AdaptationCancelled) as failure:
                result, error = None, str(failure)
            challengers.append(Challenger(name, result, error, time.perf_counter() - started))
    decision = gate(champion, [(c.name, c.result) for c in challengers], split, seed, min_target_labels,
                    decisive_target_labels, regression_loss)
    if decision is None:
        return Decision(None, champion, challengers, "no adaptation promoted: no challenger for the gate to judge",
                        False, split)
    judged = [c for c in challengers if c.result is not None and c.result.assumption != "none"]
    winner = None if decision.winner is None else judged[decision.winner]
    model = champion if winner is None or winner.model is None else winner.model
    return Decision(None if winner is None else winner.name, model, challengers, decision.reason,
                    decision.needs_labels, split)

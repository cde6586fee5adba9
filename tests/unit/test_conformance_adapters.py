"""Every built-in adapter passes the plugin kit's adapter conformance suite (as a third-party one must)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.adaptation import AdaptationContext, AdaptationResult, Adapter
from monitor.plugins import PluginManager
from monitor.testing import adaptation_context, check_adapter, check_adapter_bad_options
from tests.adapt_support import broken_target, context, domain, source_task, train_mlp

ADAPTERS = PluginManager(environ={}, load_entry_points=False).provided["adapters"]


@pytest.mark.parametrize("type_name, options", [
    ("importance_weighting", {}), ("importance_weighting", {"method": "ulsif"}),
    ("importance_weighting", {"method": "kliep"}), ("feature_alignment", {}),
    ("feature_alignment", {"method": "coral", "direction": "forward"}), ("label_shift", {}),
    ("label_shift", {"method": "bbse"}), ("rebaseline", {}),
    ("augmentation", {}), ("augmentation", {"method": "noise", "amounts": [0.5]}), ("ensemble", {}),
    ("command", {"argv": [sys.executable, "-c", "import sys; sys.stdin.read()"]}),
])
def test_builtin_adapter_conforms(type_name: str, options: dict[str, Any]) -> None:
    check_adapter(lambda: ADAPTERS[type_name](options))


def test_finetune_conforms_on_a_torch_model(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    source_x, source_y = source_task(600, seed=0)
    model = train_mlp(source_x, source_y, epochs=5)
    target_x, target_y = broken_target(400, seed=1)

    def build() -> AdaptationContext:
        labelled = np.arange(400) < 200
        return context(tmp_path, model, domain(source_x, source_y), domain(target_x, target_y, labelled))

    check_adapter(lambda: ADAPTERS["finetune"]({"max_epochs": 3}), build)


@pytest.mark.parametrize("type_name, bad", [
    ("importance_weighting", [("method", {"method": "magic"}), ("clip", {"clip": -1})]),
    ("feature_alignment", [("direction", {"direction": "sideways"})]),
    ("label_shift", [("method", {"method": "guess"})]),
    ("rebaseline", [("min_rows", {"min_rows": 0})]),
    ("ensemble", [("members", {"members": ["magic"]}), ("steps", {"steps": 0})]),
    ("augmentation", [("method", {"method": "magic"}), ("amounts", {"amounts": []}),
                      ("amounts", {"amounts": [3.0]})]),
    ("command", [("argv", {}), ("timeout", {"argv": ["x"], "timeout": -1})]),
    ("webhook", [("url", {}), ("url", {"url": "ftp://example.com/"})]),
])
def test_builtin_adapter_rejects_bad_options(type_name: str, bad: list[tuple[str, dict[str, Any]]]) -> None:
    check_adapter_bad_options(ADAPTERS[type_name], bad)


class _IgnoresCancel(Adapter):
    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        return AdaptationResult(remedy="external", assumption="none")


class _BadWeights(Adapter):
    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        ctx.check_cancelled()
        return AdaptationResult(remedy="sample_weights", assumption="covariate", weights=np.ones(3))


class _ChangesTheChampion(Adapter):
    def adapt(self, ctx: AdaptationContext) -> AdaptationResult:
        ctx.check_cancelled()
        ctx.model.centroids += 1.0  # type: ignore[union-attr]
        return AdaptationResult(remedy="external", assumption="none")


@pytest.mark.parametrize("adapter, broken", [
    (_IgnoresCancel, "must raise AdaptationCancelled"),
    (_BadWeights, "sample weights for"),
    (_ChangesTheChampion, "changed the champion model"),
])
def test_the_suite_catches_broken_adapters(adapter: type[Adapter], broken: str) -> None:
    with pytest.raises(AssertionError, match=broken):
        check_adapter(lambda: adapter({}))


def test_the_default_context_is_a_shifted_task_with_a_working_model() -> None:
    ctx = adaptation_context("label", target_labels=10)
    assert ctx.target.labelled_rows == 10 and ctx.source.labelled_rows == ctx.source.rows
    accuracy = (ctx.model.predict(ctx.source.features) == ctx.source.labels).mean()
    assert accuracy > 0.7

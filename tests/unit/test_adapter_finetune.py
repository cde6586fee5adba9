"""The finetune adapter: gated fine-tuning on target labels, pulled towards the source weights."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from monitor.adaptation.contract import AdaptationCancelled, AdaptationResult, AdapterError
from monitor.adaptation.model import AdaptedModel, AffineMap, SklearnModel, TorchModel, load_torch
from tests.adapt_support import broken_target, context, domain, source_task, train_mlp
from tests.conftest import require_module

torch = require_module("torch")
finetune = require_module("plugins.adapters.finetune")

TARGET_LABELS = 200


@pytest.fixture(scope="module")
def source() -> tuple[np.ndarray, np.ndarray, TorchModel]:
    """Source rows and an MLP trained on them (shared: training takes a second or two)."""
    features, labels = source_task(2000, seed=1)
    return features, labels, train_mlp(features, labels, seed=0, epochs=20)


@pytest.fixture(scope="module")
def target() -> tuple[np.ndarray, np.ndarray]:
    """Target rows where the strongest source feature (x3) no longer relates to the label."""
    return broken_target(2000 + TARGET_LABELS, seed=2)


def _run(tmp_path: Path, source, target, model=None, labels: int = TARGET_LABELS,
         **options) -> AdaptationResult:
    xs, ys, champion = source
    xt, yt = target
    labelled = np.arange(TARGET_LABELS) < labels
    ctx = context(tmp_path, champion if model is None else model, domain(xs, ys),
                  domain(xt[:TARGET_LABELS], yt[:TARGET_LABELS], labelled))
    return finetune.Finetune(options).adapt(ctx)


def _accuracy(model, target) -> float:
    xt, yt = target
    return float((model.predict(xt[TARGET_LABELS:]) == yt[TARGET_LABELS:]).mean())


def test_beats_the_source_model_and_gates_the_broken_feature(tmp_path: Path, source, target) -> None:
    result = _run(tmp_path, source, target)
    before, after = _accuracy(source[2], target), _accuracy(result.model, target)
    assert (result.remedy, result.assumption) == ("model", "labels")
    assert after > before + 0.1, (before, after)
    gate = result.details["gate_weights"]
    assert list(gate) == ["x0", "x1", "x2", "x3"]
    assert gate["x3"] < 0.5 < min(gate["x0"], gate["x1"], gate["x2"])
    assert result.details["best_validation_loss"] < result.details["validation_loss_before"]
    assert result.details["epochs"] >= result.details["best_epoch"] >= 1
    assert result.details["train_rows"] + result.details["validation_rows"] == TARGET_LABELS


def test_the_source_model_is_left_as_it_was(tmp_path: Path, source, target) -> None:
    state = {key: value.clone() for key, value in source[2].module.state_dict().items()}
    _run(tmp_path, source, target, max_epochs=5)
    for key, value in source[2].module.state_dict().items():
        assert torch.equal(value, state[key])


def test_a_large_lambda_keeps_the_weights_near_the_source(tmp_path: Path, source, target) -> None:
    free = _run(tmp_path, source, target, l2_to_source=0.0).details["weight_shift"]
    pulled = _run(tmp_path, source, target, l2_to_source=100.0).details
    assert pulled["weight_shift"] < free / 20
    assert pulled["l2_to_source"] == 100.0
    assert pulled["gate_weights"]["x3"] < 0.5  # the gate still does the adapting


def test_is_seeded(tmp_path: Path, source, target) -> None:
    first = _run(tmp_path, source, target, max_epochs=10, seed=3)
    second = _run(tmp_path, source, target, max_epochs=10, seed=3)
    assert first.details == second.details


def test_save_and_load_torch_round_trip(tmp_path: Path, source, target) -> None:
    model = _run(tmp_path, source, target).model
    assert isinstance(model, TorchModel) and model.factory == finetune.GATED_FACTORY
    folder = tmp_path / "v1"
    folder.mkdir()
    entry = model.save(folder)
    loaded = load_torch(folder / entry["file"], entry["options"])
    assert isinstance(loaded.module, finetune.GatedModule)
    xt = target[0][TARGET_LABELS:]
    np.testing.assert_array_equal(loaded.predict_proba(xt), model.predict_proba(xt))
    np.testing.assert_array_equal(loaded.embed(xt), model.embed(xt))


def test_fine_tuning_a_fine_tuned_model_keeps_one_gate(tmp_path: Path, source, target) -> None:
    first = _run(tmp_path, source, target, max_epochs=5).model
    second = _run(tmp_path, source, target, model=first, max_epochs=5).model
    assert isinstance(second.module.inner, type(source[2].module))
    assert (second.factory, second.factory_options) == (first.factory, first.factory_options)


def test_keeps_the_input_map_and_prior_ratios(tmp_path: Path, source, target) -> None:
    shift = AffineMap(np.eye(4), np.full(4, 0.5))
    ratios = np.array([0.8, 1.25])
    champion = AdaptedModel(source[2], input_map=shift, prior_ratios=ratios)
    result = _run(tmp_path, source, target, model=champion, max_epochs=20)
    assert isinstance(result.model, AdaptedModel)
    assert result.model.input_map is shift
    np.testing.assert_array_equal(result.model.prior_ratios, ratios)
    assert isinstance(result.model.base, TorchModel)


def test_mixes_in_source_rows(tmp_path: Path, source, target) -> None:
    details = _run(tmp_path, source, target, max_epochs=3, source_mix=2.0).details
    assert details["mixed_source_rows"] == 2 * (TARGET_LABELS - details["validation_rows"])


def test_too_few_labels_says_how_many(tmp_path: Path, source, target) -> None:
    with pytest.raises(AdapterError, match="12 labelled target rows have arrived, 20 are needed"):
        _run(tmp_path, source, target, labels=12)


def test_needs_a_torch_model(tmp_path: Path, source, target) -> None:
    sklearn = require_module("sklearn.linear_model")
    xs, ys, _ = source
    linear = SklearnModel(sklearn.LogisticRegression().fit(xs, ys))
    with pytest.raises(AdapterError, match="finetune needs a torch model"):
        _run(tmp_path, source, target, model=AdaptedModel(linear, prior_ratios=np.ones(2)))


def test_unknown_label_classes_are_named(tmp_path: Path, source, target) -> None:
    xt, yt = target
    bad = (yt + 5)[:TARGET_LABELS]
    with pytest.raises(AdapterError, match="not classes of the model"):
        finetune.Finetune({}).adapt(context(tmp_path, source[2], domain(*source[:2]), domain(xt[:TARGET_LABELS], bad)))


def test_bad_options_are_named() -> None:
    with pytest.raises(AdapterError, match="finetune adapter: option 'patience'"):
        finetune.Finetune({"patience": 0})
    with pytest.raises(AdapterError, match="option 'lambda' is unknown"):
        finetune.Finetune({"lambda": 1.0})


def test_cancellation_stops_training(tmp_path: Path, source, target) -> None:
    xs, ys, champion = source
    xt, yt = target
    ctx = context(tmp_path, champion, domain(xs, ys), domain(xt[:TARGET_LABELS], yt[:TARGET_LABELS]))
    timer = threading.Timer(0.2, ctx.cancelled.set)
    timer.start()
    try:
        with pytest.raises(AdaptationCancelled):
            finetune.Finetune({"max_epochs": 1_000_000, "patience": 1_000_000}).adapt(ctx)
    finally:
        timer.cancel()


def test_registered_as_finetune() -> None:
    assert finetune.driftd_adapters() == {"finetune": finetune.Finetune}


def test_the_plugin_loads_without_torch() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None; import plugins.adapters.finetune as f; "
            "print(f.Finetune({}).type_name)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "finetune"

"""Timing of one adaptation cycle per remedy: importance weighting and fine-tuning.

    .venv/bin/python benchmarks/adaptation.py [--repeat 3] [--output benchmarks/results/adaptation.json]

(a) importance weighting: 10,000 labelled source rows and 10,000 unlabelled target rows, 20
    features, a covariate shift; the champion is a scikit-learn LogisticRegression. Stages: the
    gate's split, the adapter (density ratios + weighted refit), the gate's label-free judgement
    (domain classifier, support check, importance-weighted validation).
(b) fine-tuning: an MLP pre-trained on 10,000 source rows (outside the timing), a target of 5,000
    rows with 500 labels where one feature's relation to the label broke. Stages: the gate's split,
    the finetune adapter, the gate's judgement.

Each stage is timed ``--repeat`` times (the fastest wall and CPU time are reported, as in the
other benchmarks; CPU time counts both torch threads, and is less disturbed by other work); the
held-out target accuracy of champion and challenger is printed as a sanity check, untimed. The
figures go to a table on stdout and to ``benchmarks/results/adaptation.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from benchmarks.common import measure  # noqa: E402
from monitor.adaptation.contract import AdaptationContext, AdaptationResult, Domain, DriftInfo  # noqa: E402
from monitor.adaptation.model import Model, SklearnModel, TorchModel  # noqa: E402

FEATURES = 20
SOURCE_ROWS = 10_000
TARGET_ROWS_IW = 10_000
TARGET_ROWS_FT = 5_000
TARGET_LABELS = 500
VALIDATION_SHARE = 0.3
SEED = 0
NAMES = tuple(f"f{i:02d}" for i in range(FEATURES))


def build_mlp(features: int = FEATURES, hidden: int = 64, classes: int = 2) -> Any:
    """features → hidden → hidden → classes, ReLU (the fine-tuning champion)."""
    from torch import nn

    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def labels_of(features: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A slightly non-linear task: sign of w·x + 0.5·x₀² − 0.5 plus noise."""
    logit = features @ weights + 0.5 * features[:, 0] ** 2 - 0.5 + 0.5 * rng.normal(size=len(features))
    return (logit > 0).astype(np.int64)


def covariate_shift_data(rng: np.random.Generator) -> tuple[Domain, Domain, np.ndarray, np.ndarray]:
    """Source and (unlabelled) target domains for (a): p(y|x) fixed, 5 features' means and scales moved."""
    weights = rng.normal(size=FEATURES) / np.sqrt(FEATURES) * 2
    source_x = rng.normal(size=(SOURCE_ROWS, FEATURES))
    target_x = rng.normal(size=(TARGET_ROWS_IW, FEATURES))
    target_x[:, :5] = target_x[:, :5] * 1.1 + 0.4
    source = Domain(source_x, NAMES, labels_of(source_x, weights, rng))
    target_y = labels_of(target_x, weights, rng)
    return source, Domain(target_x, NAMES), target_x, target_y


def broken_feature_data(rng: np.random.Generator) -> tuple[Domain, Domain, np.ndarray, np.ndarray]:
    """Source and target domains for (b): the strongest feature stops relating to the label."""
    weights = rng.normal(size=FEATURES) / np.sqrt(FEATURES)
    weights[0] = 2.0
    source_x = rng.normal(size=(SOURCE_ROWS, FEATURES))
    target_x = rng.normal(size=(TARGET_ROWS_FT, FEATURES))
    broken = weights.copy()
    broken[0] = 0.0
    source_y = (source_x @ weights + 0.3 * rng.normal(size=SOURCE_ROWS) > 0).astype(np.int64)
    source = Domain(source_x, NAMES, source_y)
    target_y = (target_x @ broken + 0.3 * rng.normal(size=TARGET_ROWS_FT) > 0).astype(np.int64)
    return source, _partly_labelled(target_x, target_y), target_x, target_y


def _partly_labelled(features: np.ndarray, labels: np.ndarray) -> Domain:
    """A target domain whose first ``TARGET_LABELS`` rows carry their label."""
    labelled = np.arange(len(features)) < TARGET_LABELS
    return Domain(features, NAMES, np.where(labelled, labels, 0), labelled)


def pretrain_mlp(source: Domain, seed: int) -> TorchModel:
    """The MLP trained on the source rows (10 epochs of Adam, 128-row batches; untimed)."""
    import torch

    torch.manual_seed(seed)
    module = build_mlp()
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    x = torch.as_tensor(source.features, dtype=torch.float32)
    y = torch.as_tensor(source.labels)
    for _ in range(10):
        for batch in torch.randperm(len(y)).split(128):
            loss = torch.nn.functional.cross_entropy(module(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    module.eval()
    return TorchModel(module, [0, 1], "adaptation:build_mlp", {})


def cycle(name: str, adapter: Any, champion: Model, source: Domain, target: Domain, workdir: Path,
          repeat: int) -> tuple[dict[str, float], AdaptationResult, Any]:
    """Time split → adapt → judge, each stage ``repeat`` times; the seconds and the last outputs."""
    from monitor.adaptation.gate import judge, split_for_gate

    seconds: dict[str, Any] = {"cpu": {}}
    split = _timed(seconds, "split", lambda: split_for_gate(source, target, VALIDATION_SHARE, SEED), repeat)
    event = DriftInfo(1, 1, 0.25, NAMES[:5], ("ks",))

    def adapt() -> AdaptationResult:
        ctx = AdaptationContext(monitor="bench", event=event, source=split.source_train, target=split.target,
                                model=champion, workdir=workdir / name, log=logging.getLogger("bench"), seed=SEED)
        return adapter.adapt(ctx)

    result = _timed(seconds, "adapt", adapt, repeat)
    decision = _timed(seconds, "judge", lambda: judge(champion, [(name, result)], split, seed=SEED), repeat)
    seconds["total"] = round(seconds["split"] + seconds["adapt"] + seconds["judge"], 4)
    seconds["cpu"]["total"] = round(sum(seconds["cpu"].values()), 4)
    return seconds, result, decision


def _timed(seconds: dict[str, Any], stage: str, fn: Callable[[], Any], repeat: int) -> Any:
    """Best wall seconds into ``seconds[stage]``, best CPU seconds into ``seconds["cpu"][stage]``."""
    timing = measure(fn, repeat=repeat)
    seconds[stage] = round(timing.seconds, 4)
    seconds["cpu"][stage] = round(timing.cpu_seconds, 4)
    return timing.result


def accuracy(model: Model, features: np.ndarray, labels: np.ndarray) -> float:
    """Share of held-out target rows classified right."""
    return round(float((model.predict(features) == labels).mean()), 4)


def machine() -> dict[str, Any]:
    """Where the figures were taken."""
    import sklearn
    import torch

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "numpy": np.__version__, "torch": torch.__version__, "sklearn": sklearn.__version__,
            "load_avg_1m_end": round(os.getloadavg()[0], 2)}


def run_importance_weighting(workdir: Path, repeat: int) -> dict[str, Any]:
    """Case (a): the importance-weighting cycle around a LogisticRegression champion."""
    from sklearn.linear_model import LogisticRegression

    from plugins.adapters.importance_weighting import ImportanceWeighting

    source, target, target_x, target_y = covariate_shift_data(np.random.default_rng(SEED))
    champion = SklearnModel(LogisticRegression(max_iter=1000).fit(source.features, source.labels))
    seconds, result, decision = cycle("importance_weighting", ImportanceWeighting({}), champion, source, target,
                                      workdir, repeat)
    return {"seconds": seconds, "rows": {"source": SOURCE_ROWS, "target": TARGET_ROWS_IW,
                                         "target_labels": 0, "features": FEATURES},
            "accuracy": {"champion": accuracy(champion, target_x, target_y),
                         "challenger": accuracy(result.model, target_x, target_y)},
            "importance_weighting": {"ess_share": result.details.get("ess_share"),
                                     "clipped_share": result.details.get("clipped_share")},
            "gate": getattr(decision, "reason", str(decision))}


def run_finetune(workdir: Path, repeat: int) -> dict[str, Any]:
    """Case (b): the fine-tuning cycle around a pre-trained MLP champion."""
    from plugins.adapters.finetune import Finetune

    source, target, target_x, target_y = broken_feature_data(np.random.default_rng(SEED + 1))
    champion = pretrain_mlp(source, SEED)
    seconds, result, decision = cycle("finetune", Finetune({}), champion, source, target, workdir, repeat)
    held_out = slice(TARGET_LABELS, None)
    details = result.details
    return {"seconds": seconds, "rows": {"source_pretraining": SOURCE_ROWS, "target": TARGET_ROWS_FT,
                                         "target_labels": TARGET_LABELS, "features": FEATURES},
            "accuracy": {"champion": accuracy(champion, target_x[held_out], target_y[held_out]),
                         "challenger": accuracy(result.model, target_x[held_out], target_y[held_out])},
            "finetune": {"epochs": details["epochs"], "train_rows": details["train_rows"],
                         "validation_rows": details["validation_rows"],
                         "gate_weight_broken": details["gate_weights"][NAMES[0]],
                         "gate_weight_others_min": min(list(details["gate_weights"].values())[1:])},
            "gate": getattr(decision, "reason", str(decision))}


def table(results: dict[str, Any]) -> str:
    """A Markdown table of the stage timings and the held-out accuracies."""
    lines = ["| cycle | split s | adapt s | judge s | total s | total CPU s | champion acc | challenger acc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("importance_weighting", "finetune"):
        seconds, acc = results[name]["seconds"], results[name]["accuracy"]
        lines.append(f"| {name} | {seconds['split']:.3f} | {seconds['adapt']:.3f} | {seconds['judge']:.3f} | "
                     f"{seconds['total']:.3f} | {seconds['cpu']['total']:.3f} | "
                     f"{acc['champion']:.3f} | {acc['challenger']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    """Run both cycles, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per stage; the fastest is reported")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "adaptation.json")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="driftd-bench-adapt-") as workdir:
        results = {"importance_weighting": run_importance_weighting(Path(workdir), arguments.repeat),
                   "finetune": run_finetune(Path(workdir), arguments.repeat)}
    results["repeat"] = arguments.repeat
    results["machine"] = {**machine(), "load_avg_1m_start": load_before}
    print(table(results))
    print(json.dumps(results["machine"]))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()

"""Performance estimation without labels, side by side: driftd's CBPE and NannyML's CBPE on the same data.

The seeded covariate-shift tasks of tests/performance_scenario.py (windows of 2,000 rows whose mean
moves up to 1 σ along a random direction; an over-confident logistic model), 2- and 3-class.
Each tool is fitted on the reference (probabilities, predictions, labels) and estimates accuracy
and ROC AUC per window without labels; the error is |estimate - realized accuracy on the window's
held-out labels|. Time per window is the estimate alone (the fit is reported apart).

    .venv/bin/python benchmarks/performance_estimation.py --peers-python /work/peers-venv/bin/python

The data go to benchmarks/.data/performance/ (seeded .npz); NannyML runs in the peers' venv on the
same files (``--peer`` mode, numpy + pandas + nannyml only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "performance"
METRICS = ("accuracy", "roc_auc")


def _files(seeds: int, classes: int) -> list[Path]:
    """The task files: ``classes`` 0 is the regression task."""
    return [DATA / (f"c{classes}-s{seed}.npz" if classes else f"r-s{seed}.npz") for seed in range(seeds)]


def _save(path: Path, task) -> None:  # noqa: ANN001
    arrays = {f"ref_{k}": np.asarray(v) for k, v in task.reference.items()}
    for i, (window, labels) in enumerate(zip(task.windows, task.labels)):
        arrays.update({f"w{i}_{k}": np.asarray(v) for k, v in window.items()})
        arrays[f"w{i}_y"] = labels
    np.savez(path, **arrays)


def write_data(seeds: int) -> None:
    """The seeded tasks as .npz files: reference and windows (probabilities, prediction, labels)."""
    sys.path.insert(0, str(HERE.parent))
    from tests.performance_scenario import classification, regression

    DATA.mkdir(parents=True, exist_ok=True)
    for classes in (2, 3, 0):
        for seed, path in enumerate(_files(seeds, classes)):
            _save(path, classification(seed, classes) if classes else regression(seed))


def _load(path: Path) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    data = np.load(path)
    reference = {k[4:]: data[k] for k in data.files if k.startswith("ref_")}
    count = len({k.split("_")[0] for k in data.files if k.startswith("w")})
    windows = [{k.split("_", 1)[1]: data[k] for k in data.files if k.startswith(f"w{i}_")} for i in range(count)]
    return reference, windows


def _realized(window: dict[str, np.ndarray], classes: int) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    if not classes:
        return {"mae": float(np.mean(np.abs(window["y"] - window["prediction"])))}
    scores = np.column_stack([window[f"p{k}"] for k in range(classes)])
    auc = (roc_auc_score(window["y"], scores[:, 1]) if classes == 2
           else roc_auc_score(window["y"], scores, multi_class="ovr", labels=list(range(classes))))
    return {"accuracy": float(np.mean(window["prediction"] == window["y"])), "roc_auc": float(auc)}


def run_driftd(seeds: int) -> list[dict]:
    """driftd's estimates, one record per window."""
    sys.path.insert(0, str(HERE.parent))
    from monitor.performance import PerformanceEstimator, PerformanceSpec

    records = []
    for classes in (2, 3):
        for path in _files(seeds, classes):
            reference, windows = _load(path)
            spec = PerformanceSpec(target="y", probabilities=tuple(f"p{k}" for k in range(classes)),
                                   prediction="prediction", features=("x0", "x1", "x2", "x3"), metrics=METRICS,
                                   classes=tuple(range(classes)))
            started = time.perf_counter()
            estimator = PerformanceEstimator.fit(reference, spec)
            fit = time.perf_counter() - started
            for window in windows:
                unlabelled = {k: v for k, v in window.items() if k != "y"}
                started = time.perf_counter()
                estimate = estimator.estimate_window(unlabelled)
                seconds = time.perf_counter() - started
                records.append({"tool": "driftd", "classes": classes, "file": path.name, "fit_s": fit,
                                "window_s": seconds, "reliable": estimate.reliable,
                                **{m: estimate.get(m).value for m in METRICS}})
    for path in _files(seeds, 0):
        reference, windows = _load(path)
        spec = PerformanceSpec(target="y", task="regression", prediction="prediction", metrics=("mae",),
                               features=("x0", "x1", "x2", "x3"))
        started = time.perf_counter()
        estimator = PerformanceEstimator.fit(reference, spec)
        fit = time.perf_counter() - started
        for window in windows:
            started = time.perf_counter()
            estimate = estimator.estimate_window({k: v for k, v in window.items() if k != "y"})
            records.append({"tool": "driftd", "classes": 0, "file": path.name, "fit_s": fit,
                            "window_s": time.perf_counter() - started, "mae": estimate.get("mae").value})
    return records


def run_nannyml(seeds: int) -> list[dict]:
    """NannyML's CBPE estimates, one record per window (runs in the peers' venv)."""
    import nannyml as nml
    import pandas as pd

    records = []
    for classes in (2, 3):
        for path in _files(seeds, classes):
            reference, windows = _load(path)
            rows = len(windows[0]["y"])
            proba = "p1" if classes == 2 else {k: f"p{k}" for k in range(classes)}
            started = time.perf_counter()
            cbpe = nml.CBPE(y_pred_proba=proba, y_pred="prediction", y_true="y", metrics=list(METRICS),
                            chunk_size=rows, problem_type="classification_binary" if classes == 2
                            else "classification_multiclass")
            cbpe.fit(pd.DataFrame(reference))
            fit = time.perf_counter() - started
            analysis = pd.DataFrame({k: np.concatenate([w[k] for w in windows]) for k in windows[0] if k != "y"})
            started = time.perf_counter()
            result = cbpe.estimate(analysis).filter(period="analysis").to_df()
            seconds = (time.perf_counter() - started) / len(windows)
            for i in range(len(windows)):
                records.append({"tool": "nannyml", "classes": classes, "file": path.name, "fit_s": fit,
                                "window_s": seconds,
                                **{m: float(result[(m, "value")].iloc[i]) for m in METRICS}})
    for path in _files(seeds, 0):
        reference, windows = _load(path)
        started = time.perf_counter()
        dle = nml.DLE(feature_column_names=["x0", "x1", "x2", "x3"], y_pred="prediction", y_true="y",
                      metrics=["mae"], chunk_size=len(windows[0]["y"]))
        dle.fit(pd.DataFrame(reference))
        fit = time.perf_counter() - started
        analysis = pd.DataFrame({k: np.concatenate([w[k] for w in windows]) for k in windows[0] if k != "y"})
        started = time.perf_counter()
        result = dle.estimate(analysis).filter(period="analysis").to_df()
        seconds = (time.perf_counter() - started) / len(windows)
        for i in range(len(windows)):
            records.append({"tool": "nannyml", "classes": 0, "file": path.name, "fit_s": fit, "window_s": seconds,
                            "mae": float(result[("mae", "value")].iloc[i])})
    return records


def report(driftd: list[dict], nannyml: list[dict], seeds: int) -> str:
    """A Markdown table: per tool and class count, the error against the realized values and the time."""
    realized: dict[tuple[str, int, int], dict[str, float]] = {}
    for classes in (2, 3, 0):
        for path in _files(seeds, classes):
            _, windows = _load(path)
            for i, window in enumerate(windows):
                realized[(path.name, classes, i)] = _realized(window, classes)
    lines = ["| classes | tool | accuracy: mean abs error | within 0.03 | ROC AUC: mean abs error | "
             "estimate per window | fit |", "|---|---|---|---|---|---|---|"]
    for classes in (2, 3):
        for name, records in (("driftd", driftd), ("NannyML", nannyml)):
            mine = [r for r in records if r["classes"] == classes]
            if not mine:
                continue
            index: dict[str, int] = {}
            errors = {m: [] for m in METRICS}
            for r in mine:
                i = index[r["file"]] = index.get(r["file"], -1) + 1
                for m in METRICS:
                    errors[m].append(abs(r[m] - realized[(r["file"], classes, i)][m]))
            acc = np.array(errors["accuracy"])
            lines.append(f"| {classes} | {name} | {acc.mean():.4f} | {np.mean(acc < 0.03):.1%} | "
                         f"{np.mean(errors['roc_auc']):.4f} | {1000 * np.median([r['window_s'] for r in mine]):.1f} ms"
                         f" | {1000 * np.median([r['fit_s'] for r in mine]):.0f} ms |")
    lines += ["", "| regression | tool | MAE: mean relative error | within 10 % | worst | estimate per window | fit |",
              "|---|---|---|---|---|---|---|"]
    for name, records in (("driftd", driftd), ("NannyML", nannyml)):
        mine = [r for r in records if r["classes"] == 0]
        if not mine:
            continue
        index: dict[str, int] = {}
        relative = []
        for r in mine:
            i = index[r["file"]] = index.get(r["file"], -1) + 1
            relative.append(abs(r["mae"] / realized[(r["file"], 0, i)]["mae"] - 1))
        errors = np.array(relative)
        lines.append(f"| DLE | {name} | {errors.mean():.2%} | {np.mean(errors < 0.1):.1%} | {errors.max():.2%} | "
                     f"{1000 * np.median([r['window_s'] for r in mine]):.1f} ms | "
                     f"{1000 * np.median([r['fit_s'] for r in mine]):.0f} ms |")
    return "\n".join(lines)


def main() -> None:
    """Write the data, run both tools, print the table and write results/performance_estimation.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--peers-python", default=str(HERE.parent / ".peers" / "bin" / "python"))
    parser.add_argument("--peer", action="store_true", help="run NannyML alone (inside the peers' venv)")
    args = parser.parse_args()
    if args.peer:
        print(json.dumps(run_nannyml(args.seeds)))
        return
    write_data(args.seeds)
    driftd = run_driftd(args.seeds)
    nannyml: list[dict] = []
    if Path(args.peers_python).exists():
        done = subprocess.run([args.peers_python, __file__, "--peer", "--seeds", str(args.seeds)],
                              capture_output=True, text=True, check=True)
        nannyml = json.loads(done.stdout.strip().splitlines()[-1])
    else:
        print(f"no peers' python at {args.peers_python}: NannyML left out", file=sys.stderr)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "performance_estimation.json").write_text(json.dumps(driftd + nannyml))
    print(report(driftd, nannyml, args.seeds))


if __name__ == "__main__":
    main()

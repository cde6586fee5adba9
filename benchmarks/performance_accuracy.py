"""The figures of the README's "Model performance" table: estimation error on the seeded tasks.

    .venv/bin/python benchmarks/performance_accuracy.py

Tasks from tests/performance_scenario.py, 20 seeds × 10 windows each: covariate shift (2 and 3
classes, and a regressor), and concept shift (labels flipped in a region the reference never
covered; two sensors swapped).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.performance import PerformanceEstimator, PerformanceSpec  # noqa: E402
from tests.performance_scenario import FEATURES, Task, classification, regression  # noqa: E402

SEEDS = range(20)
FLIPPED = (0, .01, .02, .03, .04, .06, .08, .1, .15, .3)


def _windows(task: Task, spec: PerformanceSpec, metric: str) -> list[tuple[float, float, bool]]:
    """(estimated, realized, reliable) per window."""
    estimator = PerformanceEstimator.fit(task.reference, spec)
    out = []
    for window, labels in zip(task.windows, task.labels):
        estimate = estimator.estimate_window(window)
        out.append((estimate.get(metric).value, estimator.realized(window, labels)[metric], estimate.reliable))
    return out


def _classifier_spec(task: Task) -> PerformanceSpec:
    return PerformanceSpec(target="y", probabilities=task.probabilities, features=FEATURES, prediction="prediction")


def main() -> None:
    """Print one line per task."""
    for classes in (2, 3):
        rows = []
        for seed in SEEDS:
            task = classification(seed, classes)
            rows += _windows(task, _classifier_spec(task), "accuracy")
        errors = np.array([abs(e - r) for e, r, _ in rows])
        print(f"covariate shift, {classes} classes: within 0.03 {np.mean(errors < 0.03):.1%}, mean error "
              f"{errors.mean():.4f}, worst {errors.max():.4f}, reliable {np.mean([r for *_, r in rows]):.1%} "
              f"of {len(rows)} windows")
    for kind in ("labels flipped in a region", "swapped sensors"):
        for classes in (2, 3):
            rows = []
            for seed in SEEDS:
                task = (classification(seed, classes, max_shift=0.0, swap=True) if kind == "swapped sensors"
                        else classification(seed, classes, max_shift=0.0, flipped_share=FLIPPED))
                rows += _windows(task, _classifier_spec(task), "accuracy")
            off = [reliable for e, r, reliable in rows if abs(e - r) > 0.05]
            print(f"{kind}, {classes} classes: {len(off)} of {len(rows)} windows off by > 0.05, "
                  f"{off.count(False)} of them unreliable; {sum(not r for *_, r in rows)} unreliable in all")
    rows = []
    for seed in SEEDS:
        task = regression(seed)
        rows += _windows(task, PerformanceSpec(target="y", task="regression", features=FEATURES,
                                               prediction="prediction"), "mae")
    relative = np.array([abs(e / r - 1) for e, r, _ in rows])
    print(f"regression: MAE within 10% {np.mean(relative < 0.1):.1%}, mean {relative.mean():.2%}, "
          f"worst {relative.max():.2%} of {len(rows)} windows")


if __name__ == "__main__":
    main()

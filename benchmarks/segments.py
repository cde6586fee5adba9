"""Cost of per-segment evaluation (features.segment_by) as segments grow (issue 17).

    .venv/bin/python benchmarks/segments.py

Three numeric and one categorical feature, ks and chi_square; 500 window rows per segment and a
reference of 2 000 rows per segment. Prints the time of ``evaluate_segments`` per window (best of 3).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import FeaturesConfig, MeasureConfig  # noqa: E402
from monitor.divergence import MeasureRegistry  # noqa: E402
from monitor.domain.evaluate import evaluate_window, resolve_measures  # noqa: E402
from monitor.domain.reference import feature_kinds, summarize_rows  # noqa: E402
from monitor.domain.segments import evaluate_segments  # noqa: E402

SETTINGS = resolve_measures({"ks": MeasureConfig(), "chi_square": MeasureConfig()}, MeasureRegistry())


def _rows(rng: np.random.Generator, segments: int, per_segment: int) -> pa.Table:
    n = segments * per_segment
    return pa.table({"site": np.repeat([f"s{i:03d}" for i in range(segments)], per_segment),
                     "x": rng.normal(0, 1, n), "y": rng.normal(5, 2, n), "z": rng.gamma(2, 2, n),
                     "c": rng.choice(["a", "b", "c"], n)})


def main() -> None:
    """One line per segment count: time per window, and per segment."""
    print(f"{'segments':>8} {'window rows':>11} {'whole window ms':>15} {'segments ms':>11} {'ms/segment':>10}")
    for segments in (5, 10, 20, 40, 80):
        features = FeaturesConfig(numeric=["x", "y", "z"], categorical=["c"], segment_by=["site"],
                                  max_segments=segments)
        kinds = feature_kinds(features)
        rng = np.random.default_rng(segments)
        summary, _ = summarize_rows(_rows(rng, segments, 2_000), features, 10, 10_000_000, "b")
        window = _rows(rng, segments, 500)
        whole = best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            evaluate_window(window, kinds, summary, SETTINGS, "bh")
            whole = min(whole, time.perf_counter() - started)
            started = time.perf_counter()
            evaluate_segments(window, kinds, summary, SETTINGS, "bh", ["site"], min_rows=30)
            best = min(best, time.perf_counter() - started)
        print(f"{segments:>8} {window.num_rows:>11} {1000 * whole:>15.1f} {1000 * best:>11.1f} "
              f"{1000 * best / segments:>10.2f}")


if __name__ == "__main__":
    main()

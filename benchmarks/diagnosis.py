"""Shift diagnosis accuracy, false findings and cost on the seeded sensor scenarios (issue 17).

    .venv/bin/python benchmarks/diagnosis.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import FeaturesConfig, MeasureConfig  # noqa: E402
from monitor.divergence import MeasureRegistry, ReferenceSummary  # noqa: E402
from monitor.domain.diagnosis import explain_window  # noqa: E402
from monitor.domain.evaluate import evaluate_window, resolve_measures  # noqa: E402
from monitor.domain.reference import feature_kinds, summarize_rows  # noqa: E402
from tests.explain_scenario import CATEGORICAL, INJECTED, NUMERIC, sensors  # noqa: E402

FEATURES = FeaturesConfig(numeric=NUMERIC, categorical=CATEGORICAL)
KINDS = feature_kinds(FEATURES)
SETTINGS = resolve_measures({"ks": MeasureConfig(threshold=0.01), "chi_square": MeasureConfig(threshold=0.01)},
                            MeasureRegistry())


def main() -> None:
    """Print, per window size, the share of injected changes named right and the findings on calm windows."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    seeds = parser.parse_args().seeds
    for rows in (300, 1_000, 5_000):
        right = total = false = checked = 0
        spent = 0.0
        for seed in range(seeds):
            summary, _ = summarize_rows(sensors(np.random.default_rng(seed), 5_000, False), FEATURES, 10, 100_000, "b")
            summary = ReferenceSummary.from_bytes(summary.to_bytes())
            for drifted, offset in ((True, 1000), (False, 5000)):
                window = sensors(np.random.default_rng(offset + seed), rows, drifted)
                evaluation = evaluate_window(window, KINDS, summary, SETTINGS, "bonferroni")
                flagged = [name for name, hit in evaluation.feature_drifted.items() if hit]
                started = time.perf_counter()
                kinds = explain_window(window, KINDS, summary, flagged, alpha=0.01).kinds()
                spent += time.perf_counter() - started
                if drifted:
                    total += len(INJECTED)
                    right += sum(kinds.get(name) == kind for name, kind in INJECTED.items())
                else:
                    checked += len(KINDS)
                    false += len(kinds)
        print(f"window {rows:>5} rows: right kind {right}/{total} ({right / total:.1%}); findings on calm "
              f"windows {false}/{checked} feature-windows ({false / checked:.2%}); "
              f"{1000 * spent / (2 * seeds):.1f} ms per window (13 features)")


if __name__ == "__main__":
    main()

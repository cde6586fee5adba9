"""Evidently on case 1: ``DataDriftPreset`` with the stattest set explicitly, one measure per run.

driftd's measure → Evidently stattest: ks → ``ks``, psi → ``psi``, jensen_shannon →
``jensenshannon``, wasserstein → ``wasserstein`` (Evidently's is normalised by the reference
std), chi_square → ``chisquare`` (Evidently's is a one-sample goodness-of-fit test against the
reference proportions, not two-sample). Each measure is applied to the columns of the kinds driftd
applies it to. The pandas frames and Evidently ``Dataset`` objects are built untimed
(``setup_seconds``); ``Report.run`` is timed. Run in the peers venv.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")  # no telemetry (there is no network anyway)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import CASE1_MEASURES, measure, record_from, runner_arguments, timed  # noqa: E402
from benchmarks.data import load_case  # noqa: E402

STATTESTS = {"ks": "ks", "psi": "psi", "jensen_shannon": "jensenshannon", "wasserstein": "wasserstein",
             "chi_square": "chisquare"}


def main() -> None:
    """Time one Evidently report and print its JSON line."""
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    args = runner_arguments(__doc__.splitlines()[0], list(STATTESTS), [1])
    case = load_case(args.case)
    kinds = CASE1_MEASURES[args.measure]
    columns = [*(case.numeric if "numeric" in kinds else []), *(case.categorical if "categorical" in kinds else [])]
    definition = DataDefinition(numerical_columns=[c for c in columns if c in case.numeric],
                                categorical_columns=[c for c in columns if c in case.categorical])

    def datasets() -> tuple[Dataset, Dataset]:
        reference = case.reference.select(columns).to_pandas()
        window = case.window.select(columns).to_pandas()
        return (Dataset.from_pandas(reference, data_definition=definition),
                Dataset.from_pandas(window, data_definition=definition))

    setup_seconds, (reference, window) = timed(datasets)
    method = STATTESTS[args.measure]
    report = Report([DataDriftPreset(columns=columns, method=method)])
    timing = measure(lambda: report.run(current_data=window, reference_data=reference), args.repeat, args.warmup)
    metrics = timing.result.dict()["metrics"]
    drifted = next((m["value"] for m in metrics if m["metric_name"].startswith("DriftedColumnsCount")), {})
    notes = f"stattest {method!r} on {len(columns)} columns; drifted columns: {drifted.get('count')}"
    record_from("evidently", args.case, args.measure, timing, version=f"evidently {evidently.__version__}",
                setup_seconds=round(setup_seconds, 4), notes=notes).emit()


if __name__ == "__main__":
    main()

"""driftd through its public path.

Case 1: the reference summary is built once with ``monitor.domain.reference.summarize_table`` and
deserialised with ``ReferenceSummary.from_bytes`` (both untimed: they happen once per reference
version, and the engine keeps the summary in memory; their time is reported as
``setup_seconds``); the timed call is ``monitor.domain.evaluate.evaluate_window`` on the window's
pyarrow table with the configured measures (one of ks, psi, jensen_shannon, wasserstein,
chi_square, or ``all`` five together) and Benjamini–Hochberg correction.

Case 1 ``compare``: ``monitor.compare.compare(reference, window, <the five measures>)`` timed whole, the
reference summary included (nothing is untimed set-up: a one-off comparison has no stored summary);
``compare_ks_chi2`` the same with KS and chi-square only (NannyML's side of the comparison);
``compare_<measure>`` with that one measure (Evidently's side: one stattest per report). Each run
compares the columns of the kinds its measures take (chi-square: the 10 categorical ones; KS and
Wasserstein: the 50 numeric ones), as the peers' runners do.

Cases 2 and 3: ``MULTIVARIATE_MEASURES["mmd"]``'s class with 100 permutations and a window
limit high enough to use every row; the reference summary (``summarize_multivariate`` with every
reference row in its sample) is untimed set-up; ``measure.score(summary, window, backend)`` is
timed on the numpy backend (``mmd_numpy``) or torch on the CPU (``mmd_torch``).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import CASE1_MEASURES, Record, measure, record_from, runner_arguments, timed  # noqa: E402
from benchmarks.data import load_case  # noqa: E402

#: The measures of each ``compare`` run: all five; NannyML's side-by-side (KS on the numeric columns and
#: chi-square on the categorical ones); and each measure alone (Evidently's side-by-side, one stattest a run).
COMPARE_MEASURES = {"compare": list(CASE1_MEASURES), "compare_ks_chi2": ["ks", "chi_square"],
                    **{f"compare_{name}": [name] for name in CASE1_MEASURES}}
MEASURES = [*CASE1_MEASURES, "all", *COMPARE_MEASURES, "mmd_numpy", "mmd_torch"]
PERMUTATIONS = 100


def _version() -> str:
    import monitor

    return f"driftd {getattr(monitor, '__version__', '?')}"


def run_case1(case_number: int, measure_name: str, repeat: int, warmup: int) -> Record:
    """Time ``evaluate_window`` for case 1."""
    from monitor.config import FeaturesConfig, MeasureConfig
    from monitor.divergence import MeasureRegistry, ReferenceSummary
    from monitor.domain.evaluate import evaluate_window, resolve_measures
    from monitor.domain.reference import feature_kinds, summarize_table

    case = load_case(case_number)
    features = FeaturesConfig(numeric=case.numeric, categorical=case.categorical)
    summary_seconds, new = timed(lambda: summarize_table(case.reference, features, bins=10, max_rows=200_000,
                                                         origin="bench"))
    load_seconds, summary = timed(lambda: ReferenceSummary.from_bytes(new.summary))
    names = list(CASE1_MEASURES) if measure_name == "all" else [measure_name]
    settings = resolve_measures({name: MeasureConfig() for name in names}, MeasureRegistry())
    kinds = feature_kinds(features)
    timing = measure(lambda: evaluate_window(case.window, kinds, summary, settings, "bh"), repeat, warmup)
    evaluation = timing.result
    notes = (f"{len(evaluation.results)} results; {sum(evaluation.feature_drifted.values())} features drifted; "
             f"summary {summary_seconds:.2f} s + from_bytes {load_seconds:.3f} s untimed")
    if evaluation.failed_measures or evaluation.missing:
        notes += f"; failed {evaluation.failed_measures}; missing {evaluation.missing}"
    return record_from("driftd", case_number, measure_name, timing, version=_version(),
                       setup_seconds=round(summary_seconds + load_seconds, 4), notes=notes)


def run_compare(case_number: int, repeat: int, warmup: int, name: str = "compare") -> Record:
    """Time ``monitor.compare.compare`` on case 1, summary of the reference included."""
    from monitor.compare import compare

    case = load_case(case_number)
    measures = COMPARE_MEASURES[name]
    # the columns of the kinds the chosen measures take, as the peers' runners choose theirs
    kinds = {kind for measure_name in measures for kind in CASE1_MEASURES[measure_name]}
    numeric = case.numeric if "numeric" in kinds else []
    categorical = case.categorical if "categorical" in kinds else []
    timing = measure(lambda: compare(case.reference, case.window, measures, numeric=numeric,
                                     categorical=categorical), repeat, warmup)
    report = timing.result
    notes = (f"{len(report.results)} results; {len(report.drifted_features)} features drifted; "
             "reference summary inside the timed call")
    if report.failed_measures or report.missing_features:
        notes += f"; failed {report.failed_measures}; missing {report.missing_features}"
    return record_from("driftd", case_number, name, timing, version=_version(), notes=notes)


def _mmd_measure(rows: int) -> Any:
    """A fresh MMD measure with 100 permutations that keeps every window row."""
    from monitor.divergence.registry import MULTIVARIATE_MEASURES

    cls = type(MULTIVARIATE_MEASURES["mmd"])
    accepted = inspect.signature(cls).parameters
    wanted = {"permutations": PERMUTATIONS, "n_permutations": PERMUTATIONS, "max_window": rows,
              "max_sample": rows, "seed": 0}
    return cls(**{key: value for key, value in wanted.items() if key in accepted})


def run_mmd(case_number: int, measure_name: str, repeat: int, warmup: int) -> Record:
    """Time the MMD permutation test for case 2 or 3 on one backend."""
    from monitor.divergence.backend import resolve_backend
    from monitor.divergence.summary import summarize_multivariate

    case = load_case(case_number)
    reference = case.numeric_array(case.reference)
    window = case.numeric_array(case.window)
    backend_name = measure_name.removeprefix("mmd_")
    backend = resolve_backend(backend_name, device="cpu") if backend_name == "torch" else resolve_backend("numpy")
    summary_seconds, summary = timed(lambda: summarize_multivariate(reference, case.numeric,
                                                                    max_sample=len(reference), seed=0))
    mmd = _mmd_measure(len(window))
    timing = measure(lambda: mmd.score(summary, window, backend), repeat, warmup)
    score = timing.result
    notes = (f"{len(reference):,}+{len(window):,} rows x {reference.shape[1]}, {PERMUTATIONS} permutations, "
             f"backend {backend}, bandwidth {summary.bandwidth:.4f} (standardised); summary "
             f"{summary_seconds:.2f} s untimed")
    if backend_name == "torch":
        import torch

        notes += f"; torch {torch.__version__}, {torch.get_num_threads()} threads"
    return record_from("driftd", case_number, measure_name, timing, version=_version(),
                       setup_seconds=round(summary_seconds, 4), p_value=score.p_value,
                       statistic=float(score.value), notes=notes)


def main() -> None:
    """Run one driftd measurement and print its JSON line."""
    args = runner_arguments(__doc__.splitlines()[0], MEASURES, [1, 2, 3])
    if args.case == 1:
        if args.measure.startswith("mmd"):
            raise SystemExit("case 1 takes the per-feature measures")
        record = (run_compare(args.case, args.repeat, args.warmup, args.measure) if args.measure in COMPARE_MEASURES
                  else run_case1(args.case, args.measure, args.repeat, args.warmup))
    else:
        if not args.measure.startswith("mmd"):
            raise SystemExit("cases 2 and 3 take mmd_numpy or mmd_torch")
        record = run_mmd(args.case, args.measure, args.repeat, args.warmup)
    record.emit()


if __name__ == "__main__":
    main()

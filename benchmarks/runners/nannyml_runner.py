"""NannyML on case 1: ``UnivariateDriftCalculator`` with one method per run.

driftd's measure → NannyML method: ks → ``kolmogorov_smirnov`` (a histogram approximation once
the reference has more than 10,000 rows), jensen_shannon → ``jensen_shannon`` (numeric and
categorical), wasserstein → ``wasserstein``, chi_square → ``chi2``, ks_chi2 → both at once (every
column; driftd's side is ``compare_ks_chi2``); NannyML has no PSI. One chunk
of 100,000 rows on each side (``chunk_size`` = window rows). ``fit`` on the reference is untimed
set-up (``setup_seconds``, like driftd's reference summary); ``calculate`` on the window is
timed. NannyML reports statistics and alerts against mean ± 3 sigma of reference chunks, not
p-values. Run in the peers venv.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no usage telemetry (there is no network)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import CASE1_MEASURES, measure, record_from, runner_arguments, timed  # noqa: E402
from benchmarks.data import load_case  # noqa: E402

#: driftd measure → (NannyML continuous method, NannyML categorical method).
METHODS = {"ks": ("kolmogorov_smirnov", None), "jensen_shannon": ("jensen_shannon", "jensen_shannon"),
           "wasserstein": ("wasserstein", None), "chi_square": (None, "chi2"),
           "ks_chi2": ("kolmogorov_smirnov", "chi2"), "ks_chi2_fit": ("kolmogorov_smirnov", "chi2")}


def main() -> None:
    """Time one NannyML calculation and print its JSON line."""
    import nannyml

    warnings.filterwarnings("ignore")  # "The resulting number of chunks is too low"
    args = runner_arguments(__doc__.splitlines()[0], list(METHODS), [1])
    case = load_case(args.case)
    continuous, categorical = METHODS[args.measure]
    kinds = CASE1_MEASURES.get(args.measure, ("numeric", "categorical"))
    columns = [*(case.numeric if "numeric" in kinds else []), *(case.categorical if "categorical" in kinds else [])]
    reference = case.reference.select(columns).to_pandas()
    window = case.window.select(columns).to_pandas()
    for frame in (reference, window):
        for name in case.categorical:
            if name in frame:
                frame[name] = frame[name].astype("category")
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=columns, treat_as_categorical=[c for c in columns if c in case.categorical],
        continuous_methods=[continuous] if continuous else ["jensen_shannon"],
        categorical_methods=[categorical] if categorical else ["chi2"], chunk_size=len(window))
    if args.measure.endswith("_fit"):  # fit and calculate in one timed call, as compare() summarises inside its own
        setup_seconds = 0.0
        timing = measure(lambda: calculator.fit(reference).calculate(window), args.repeat, args.warmup)
    else:
        setup_seconds, _ = timed(lambda: calculator.fit(reference))
        timing = measure(lambda: calculator.calculate(window), args.repeat, args.warmup)
    frame = timing.result.filter(period="analysis").to_df()
    alerts = sum(bool(frame[(name, method, "alert")].iloc[0]) for name, method in
                 [(c, continuous if c in case.numeric else categorical) for c in columns])
    notes = (f"methods {continuous}/{categorical} on {len(columns)} columns; alerts: {alerts}; "
             + ("fit + calculate timed together" if args.measure.endswith("_fit") else "fit untimed"))
    record_from("nannyml", args.case, args.measure, timing, version=f"nannyml {nannyml.__version__}",
                setup_seconds=round(setup_seconds, 4), notes=notes).emit()


if __name__ == "__main__":
    main()

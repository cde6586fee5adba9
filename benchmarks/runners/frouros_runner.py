"""Frouros: the MMD permutation test on cases 2-3, KS per feature on case 1 (optional).

Cases 2/3 (``mmd``): ``frouros.detectors.data_drift.MMD`` with ``rbf_kernel`` at driftd's bandwidth
on reference-standardised data (untimed), plus the ``PermutationTestDistanceBased`` callback with
100 permutations and ``num_jobs=1`` (so the whole computation stays in this process and its
peak memory is measured). Frouros recomputes the statistic for each permutation. ``fit`` is
untimed set-up; ``compare`` is timed. Case 1 (``ks``): ``KSTest`` fitted and compared per numeric
feature, all inside the timed call. Run in the peers venv.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import (  # noqa: E402
    Record,
    measure,
    record_from,
    runner_arguments,
    standardized_like_driftd,
    timed,
)
from benchmarks.data import load_case  # noqa: E402

PERMUTATIONS = 100


def _version() -> str:
    from importlib.metadata import version

    return f"frouros {version('frouros')}"


def run_ks(repeat: int, warmup: int) -> Record:
    """KSTest per numeric feature of case 1."""
    from frouros.detectors.data_drift import KSTest

    case = load_case(1)
    columns = [(case.reference.column(n).to_numpy(), case.window.column(n).to_numpy()) for n in case.numeric]

    def run() -> list[float]:
        p_values = []
        for reference, window in columns:
            detector = KSTest()
            detector.fit(X=reference)
            result, _ = detector.compare(X=window)
            p_values.append(float(result.p_value))
        return p_values

    timing = measure(run, repeat, warmup)
    return record_from("frouros", 1, "ks", timing, version=_version(),
                       notes=f"KSTest on {len(columns)} numeric features, fit+compare timed")


def run_mmd(case_number: int, repeat: int, warmup: int) -> Record:
    """MMD with a permutation-test callback."""
    from frouros.callbacks.batch import PermutationTestDistanceBased
    from frouros.detectors.data_drift import MMD
    from frouros.utils.kernels import rbf_kernel

    case = load_case(case_number)
    reference, window, sigma = standardized_like_driftd(case.numeric_array(case.reference),
                                                        case.numeric_array(case.window))
    callback = PermutationTestDistanceBased(num_permutations=PERMUTATIONS, random_state=0, num_jobs=1,
                                            name="permutation_test")
    detector = MMD(kernel=partial(rbf_kernel, sigma=sigma), callbacks=[callback])
    setup_seconds, _ = timed(lambda: detector.fit(X=reference))
    timing = measure(lambda: detector.compare(X=window), repeat, warmup)
    result, logs = timing.result
    notes = (f"{len(reference):,}+{len(window):,} rows x {reference.shape[1]}, {PERMUTATIONS} permutations "
             f"(num_jobs=1), sigma {sigma:.4f} on reference-standardised data (driftd's); fit untimed")
    return record_from("frouros", case_number, "mmd", timing, version=_version(),
                       setup_seconds=round(setup_seconds, 4), p_value=float(logs["permutation_test"]["p_value"]),
                       statistic=float(result.distance), notes=notes)


def main() -> None:
    """Run one Frouros measurement and print its JSON line."""
    args = runner_arguments(__doc__.splitlines()[0], ["ks", "mmd"], [1, 2, 3])
    if args.case == 1:
        if args.measure != "ks":
            raise SystemExit("case 1 takes ks")
        record = run_ks(args.repeat, args.warmup)
    else:
        if args.measure != "mmd":
            raise SystemExit("cases 2 and 3 take mmd")
        record = run_mmd(args.case, args.repeat, args.warmup)
    record.emit()


if __name__ == "__main__":
    main()

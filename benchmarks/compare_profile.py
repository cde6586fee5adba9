"""Profile ``compare()`` on case 1 with py-spy, and print the profile's top five.

    py-spy record -r 200 --format raw -o /tmp/compare.txt -- \
        .venv/bin/python benchmarks/compare_profile.py --repeat 10 [--measures ks,chi_square]
    .venv/bin/python benchmarks/compare_profile.py --top /tmp/compare.txt
    .venv/bin/python benchmarks/compare_profile.py --split [--repeat 7]

The first run calls ``compare()`` once untimed (imports, plugin loading), then ``--repeat`` times.
``--top FILE`` reads a py-spy ``--format raw`` profile and prints the five functions with the most
samples of their own (the frame on top of the stack; a numpy or pyarrow function is named with its caller),
counting the stacks under ``compare`` and those of the measure pool's threads at work; imports and
threads waiting (for work, or for the pool's results) are left out.
``--split`` times ``compare()`` and the engine path (``evaluate_window`` with a stored summary, as
``benchmarks/run.py``'s ``all``) with the features scored one after the other, and splits each
call's CPU time into its ``np.sort`` calls and the rest ("non-sort CPU"): the part a faster sort
does not shrink. Best of ``--repeat`` by non-sort CPU.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import CASE1_MEASURES, py_spy_top  # noqa: E402


def top(path: Path, count: int = 5) -> list[tuple[str, float]]:
    """The functions with the most own samples under ``compare`` or at work on the pool, as shares."""
    def counted(frames: list[str]) -> bool:
        if any(frame.startswith("_find_and_load (") for frame in frames):
            return False
        comparing = any(frame.startswith("compare (") for frame in frames)
        pooled = frames[0].startswith("Thread._bootstrap (") and not frames[-1].startswith("_worker (")
        return (comparing or pooled) and not frames[-1].startswith(("Condition.wait (", "Event.wait ("))

    return py_spy_top(path, counted, _label, count)


def _label(frames: list[str]) -> str:
    """The top frame; a numpy or pyarrow wrapper named with the function and its caller in driftd."""
    names = [re.sub(r":\d+\)$", ")", frame) for frame in frames]
    library = next((lib for lib in ("numpy/", "pyarrow/") if lib in names[-1]), None)
    if library is None:
        return names[-1]
    caller = next((name for name in reversed(names) if library not in name), "?")
    if library == "pyarrow/":
        return f"pyarrow.compute in {caller}"
    inside = [name for name in names if library in name]
    numpy_function = next((name.split(" ")[0] for name in inside if not name.startswith("_wrapfunc")), "?")
    return f"np.{numpy_function} in {caller}"


def split(repeat: int) -> None:
    """Print CPU, sort CPU, non-sort CPU and wall time of compare() and of the engine path on case 1."""
    import numpy as np

    import monitor.divergence.base as base
    from benchmarks.data import load_case
    from monitor.compare import compare
    from monitor.config import FeaturesConfig, MeasureConfig
    from monitor.divergence import MeasureRegistry, ReferenceSummary
    from monitor.domain.evaluate import evaluate_window, resolve_measures
    from monitor.domain.reference import feature_kinds, summarize_table

    base._spare_core = lambda: False  # one thread: the process's CPU time splits cleanly
    case = load_case(1)
    features = FeaturesConfig(numeric=case.numeric, categorical=case.categorical)
    stored = summarize_table(case.reference, features, bins=10, max_rows=200_000, origin="bench").summary
    summary = ReferenceSummary.from_bytes(stored)
    settings = resolve_measures({name: MeasureConfig() for name in CASE1_MEASURES}, MeasureRegistry())
    kinds = feature_kinds(features)
    real_sort, sorting = np.sort, [0.0, 0]

    def timed_sort(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return real_sort(*args, **kwargs)
        finally:
            sorting[0] += time.process_time() - start
            sorting[1] += 1

    def best(function: Callable[[], object]) -> tuple[float, float, float, float, int]:
        function()
        runs = []
        for _ in range(repeat):
            sorting[:] = [0.0, 0]
            cpu, wall = time.process_time(), time.perf_counter()
            function()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            runs.append((cpu - sorting[0], cpu, sorting[0], wall, sorting[1]))
        return min(runs)

    np.sort = timed_sort  # type: ignore[assignment]
    try:
        measures = list(CASE1_MEASURES)
        for label, function in (
                ("compare()", lambda: compare(case.reference, case.window, measures, numeric=case.numeric,
                                              categorical=case.categorical)),
                ("engine path", lambda: evaluate_window(case.window, kinds, summary, settings, "bh"))):
            rest, cpu, sorts, wall, calls = best(function)
            print(f"{label:12s} non-sort CPU {rest:.3f} s  CPU {cpu:.3f} s  np.sort {sorts:.3f} s ({calls} calls)  "
                  f"wall {wall:.3f} s")
    finally:
        np.sort = real_sort


def main() -> None:
    """Run compare() on case 1, or print the top five of a profile of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--measures", default=",".join(CASE1_MEASURES))
    parser.add_argument("--top", type=Path, help="print the top five of a py-spy raw profile and exit")
    parser.add_argument("--split", action="store_true", help="split compare()'s and the engine path's CPU into "
                        "np.sort and the rest, and exit")
    args = parser.parse_args()
    if args.split:
        split(args.repeat)
        return
    if args.top:
        for frame, share in top(args.top):
            print(f"{share:6.1%}  {frame}")
        return
    from benchmarks.data import load_case
    from monitor.compare import compare

    case = load_case(1)
    measures = args.measures.split(",")
    for _ in range(args.repeat + 1):
        compare(case.reference, case.window, measures, numeric=case.numeric, categorical=case.categorical)


if __name__ == "__main__":
    main()

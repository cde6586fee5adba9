"""Profile ``compare()`` on case 1 with py-spy, and print the profile's top five.

    py-spy record -r 200 --format raw -o /tmp/compare.txt -- \
        .venv/bin/python benchmarks/compare_profile.py --repeat 10 [--measures ks,chi_square]
    .venv/bin/python benchmarks/compare_profile.py --top /tmp/compare.txt

The first run calls ``compare()`` once untimed (imports, plugin loading), then ``--repeat`` times.
``--top FILE`` reads a py-spy ``--format raw`` profile and prints the five functions with the most
samples of their own (the frame on top of the stack; a numpy or pyarrow function is named with its caller),
counting the stacks under ``compare`` and those of the measure pool's threads at work; imports and
threads waiting (for work, or for the pool's results) are left out.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

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


def main() -> None:
    """Run compare() on case 1, or print the top five of a profile of it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--measures", default=",".join(CASE1_MEASURES))
    parser.add_argument("--top", type=Path, help="print the top five of a py-spy raw profile and exit")
    args = parser.parse_args()
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

"""The floor of case 1: numpy sorting the window's 50 numeric columns once.

No exact Kolmogorov–Smirnov test can avoid sorting the window, so this is the least any
implementation of case 1 must spend. The columns are laid out contiguously beforehand (untimed)
and sorted with one ``np.sort(axis=0)`` on a Fortran-ordered (rows, features) array.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import measure, record_from, runner_arguments  # noqa: E402
from benchmarks.data import load_case  # noqa: E402


def main() -> None:
    """Time the sort and print the JSON line."""
    args = runner_arguments(__doc__.splitlines()[0], ["sort"], [1])
    case = load_case(args.case)
    window = np.asfortranarray(case.numeric_array(case.window))
    timing = measure(lambda: np.sort(window, axis=0), repeat=max(args.repeat, 5), warmup=1)
    record_from("numpy_sort_floor", args.case, "sort", timing, version=f"numpy {np.__version__}",
                notes=f"np.sort of a {window.shape[0]:,} x {window.shape[1]} float64 window, best of "
                      f"{len(timing.runs)}").emit()


if __name__ == "__main__":
    main()

"""What every runner shares: timing, peak-memory accounting and the one JSON line it prints.

Memory: each runner is its own process. Before each timed call the kernel's resident-set
high-water mark is reset (``echo 5 > /proc/self/clear_refs``, which resets both ``VmHWM`` and
``ru_maxrss``), so ``peak_rss_mib`` is the process's peak resident memory *during the measured
call* (libraries and loaded data included) and ``peak_delta_mib`` is that peak minus the
resident memory just before the call (what the computation itself added). Where the reset is
not allowed, ``ru_maxrss`` since process start is reported instead and the notes say so.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

#: Case-1 measure names (driftd's registry names) and the feature kinds driftd applies each to.
CASE1_MEASURES: dict[str, tuple[str, ...]] = {
    "ks": ("numeric",),
    "psi": ("numeric", "categorical"),
    "jensen_shannon": ("numeric", "categorical"),
    "wasserstein": ("numeric",),
    "chi_square": ("categorical",),
}


@dataclass
class Record:
    """One measurement, printed as one JSON line."""

    library: str
    case: int
    measure: str
    seconds: float | None
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    peak_delta_mib: float | None = None
    children_peak_rss_mib: float | None = None
    setup_seconds: float | None = None
    p_value: float | None = None
    statistic: float | None = None
    notes: str = ""
    runs: list[float] = field(default_factory=list)
    version: str = ""
    status: str = "ok"
    load_avg: float | None = field(default_factory=lambda: round(os.getloadavg()[0], 2))

    def emit(self) -> None:
        """Print this record as one JSON line on stdout (the orchestrator parses it)."""
        print(json.dumps(asdict(self), sort_keys=True), flush=True)


def _status_kib(key: str) -> float | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the resident-set high-water mark; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _maxrss_kib() -> float:
    """``ru_maxrss`` in KiB (Linux reports KiB, macOS bytes)."""
    value = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return value / 1024.0 if sys.platform == "darwin" else value


@dataclass
class Timing:
    """The result of :func:`measure`: best and all wall times, memory peaks, the last return value."""

    seconds: float
    cpu_seconds: float
    runs: list[float]
    peak_rss_mib: float
    peak_delta_mib: float | None
    exact_peak: bool
    result: Any
    children_peak_rss_mib: float | None = None


def measure(fn: Callable[[], Any], repeat: int = 1, warmup: int = 0) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times timed.

    Returns the fastest wall time (and the smallest CPU time, all threads of the process: less
    disturbed than wall time when other work shares the machine), every wall time, and the
    highest memory peak over the timed runs. Work done in child processes (a library's own
    worker pool) is added to the CPU time, and when they worked during the timed calls the largest
    peak of any child (``ru_maxrss`` of RUSAGE_CHILDREN) is reported separately.
    """
    for _ in range(warmup):
        fn()
    runs: list[float] = []
    cpu: list[float] = []
    peak_kib, delta_kib = 0.0, 0.0
    exact = True
    children_busy = False
    result: Any = None
    for _ in range(repeat):
        result = None
        exact = _reset_peak() and exact
        before = _status_kib("VmRSS") or _maxrss_kib()
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = fn()
        runs.append(time.perf_counter() - start)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        children_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
        cpu.append(time.process_time() - cpu_start + children_cpu)
        children_busy = children_busy or children_cpu > 0.05
        hwm = (_status_kib("VmHWM") if exact else None) or _maxrss_kib()
        peak_kib = max(peak_kib, hwm)
        delta_kib = max(delta_kib, hwm - before)
    children_kib = float(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return Timing(
        children_peak_rss_mib=round(children_kib / 1024, 1) if children_busy else None,
        seconds=min(runs), cpu_seconds=min(cpu), runs=[round(run, 4) for run in runs], peak_rss_mib=round(peak_kib / 1024, 1),
        peak_delta_mib=round(delta_kib / 1024, 1) if exact else None, exact_peak=exact, result=result,
    )


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of one call of ``fn`` and its return value (for untimed set-up steps)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def record_from(library: str, case: int, measure_name: str, timing: Timing, **extra: Any) -> Record:
    """A :class:`Record` filled from a :class:`Timing`."""
    notes = extra.pop("notes", "")
    if not timing.exact_peak:
        notes = (notes + "; " if notes else "") + "peak is ru_maxrss since process start (no clear_refs)"
    return Record(library=library, case=case, measure=measure_name, seconds=round(timing.seconds, 4),
                  cpu_seconds=round(timing.cpu_seconds, 4), children_peak_rss_mib=timing.children_peak_rss_mib,
                  peak_rss_mib=timing.peak_rss_mib, peak_delta_mib=timing.peak_delta_mib,
                  runs=timing.runs, notes=notes, **extra)


def runner_arguments(description: str, measures: list[str], cases: list[int]) -> argparse.Namespace:
    """The command line every runner takes: ``--case N --measure NAME [--repeat R]``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--case", type=int, required=True, choices=cases)
    parser.add_argument("--measure", required=True, choices=measures)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs; the fastest is reported")
    parser.add_argument("--warmup", type=int, default=0, help="untimed runs before the timed ones")
    return parser.parse_args()


def standardized_like_driftd(reference: np.ndarray, window: np.ndarray, bandwidth_rows: int = 2_000,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Both samples standardised by the reference mean and std, and driftd's MMD bandwidth.

    The peers' MMD runners use this (untimed) so every library tests the same hypothesis with
    the same kernel ``exp(-|x - y|² / (2 σ²))``: σ is the median pairwise Euclidean distance of
    the first ``bandwidth_rows`` rows of a seeded permutation of the standardised reference, as
    ``monitor.divergence.summary.summarize_multivariate`` computes it.
    """
    from scipy.spatial.distance import pdist

    mean = reference.mean(axis=0)
    std = reference.std(axis=0)
    std[std == 0] = 1.0
    x = (reference - mean) / std
    y = (window - mean) / std
    order = np.random.default_rng(seed).permutation(len(x))
    sigma = float(np.median(pdist(x[order][:bandwidth_rows])))
    return x, y, sigma if sigma > 0 else 1.0


def py_spy_top(path: Path, counted: Callable[[list[str]], bool], label: Callable[[list[str]], str],
               count: int = 5) -> list[tuple[str, float]]:
    """The ``count`` labels with the most samples in a py-spy raw profile (stacks ``counted`` keeps), as shares."""
    own: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        if stack and counted(frames):
            own[label(frames)] += int(samples)
    total = sum(own.values()) or 1
    return [(frame, round(n / total, 3)) for frame, n in own.most_common(count)]

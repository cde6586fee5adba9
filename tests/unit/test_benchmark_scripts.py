"""The issue-15 benchmark scripts run (tiny sizes, on the CPU), so they are ready for the machines that time them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _lines(*arguments: str) -> list[dict]:
    done = subprocess.run([sys.executable, *arguments], capture_output=True, text=True, timeout=240, check=True)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_the_gpu_script_runs_every_measure_on_both_backends_on_the_cpu() -> None:
    lines = _lines(str(BENCH / "gpu.py"), "--rows", "80", "--features", "4", "--permutations", "5",
                   "--device", "cpu")
    assert [(line["measure"], line["backend"]) for line in lines] == [
        (measure, backend) for measure in ("mmd", "energy_mv", "c2st")
        for backend in ("numpy", "torch float64", "torch float32")]
    mmd = [line for line in lines if line["measure"] == "mmd"]
    assert mmd[0]["value"] == pytest.approx(mmd[1]["value"], rel=1e-9)  # numpy and torch float64 agree
    assert all(line["seconds"] > 0 and line["device"] == "cpu" for line in lines)


def test_the_scaling_and_end_to_end_scripts_run_one_small_point() -> None:
    for side in ("compare", "scipy_loop"):
        (point,) = _lines(str(BENCH / "scaling.py"), "--rows", "2000", "--features", "3", "--side", side)
        assert point["side"] == side and point["seconds"] > 0 and point["peak_mib"] > 0
    (driftd,) = _lines(str(BENCH / "daemon_e2e.py"), "--driftd-only", "--rows", "6000", "--files", "2",
                       "--numeric", "2", "--categorical", "1", "--window-rows", "1000", "--max-rows", "2000")
    assert driftd["rows"] == 6000 and driftd["windows"] == 6

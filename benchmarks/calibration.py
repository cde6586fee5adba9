"""Shuffled vs time-ordered calibration, and ``threshold: auto``, on the plant log over many seeds.

For each seed of ``tests/plant_log.py`` (a daily cycle, a weekly rhythm, slow autocorrelated
wandering; a bearing wears from day 70) two monitors read the 6 weeks after the reference through
the daemon's own tick: KS at alpha 0.05 with Bonferroni (the baseline) and KS with
``threshold: auto`` after `driftd calibrate`. Reported per seed and in total: the window alarm rate
the calibration predicted (shuffled and time-ordered), the alarm rate on the stable segment (the 4
weeks before the change) and the windows until the change is flagged.

Usage: ``.venv/bin/python benchmarks/calibration.py [--seeds 20] [--out benchmarks/results/calibration.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from monitor.cli import main  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.domain.calibrate import CalibrationReport  # noqa: E402
from tests.helpers import make_runner, write_csv  # noqa: E402
from tests.plant_log import CHANGE_DAY, REFERENCE_DAYS, ROWS_PER_DAY, STABLE_DAYS, plant_log  # noqa: E402


def _config(folder: Path, name: str, threshold: object) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        f"storage: {{url: 'sqlite:///{folder / name}.db'}}\n"
        f"monitors:\n  - name: {name}\n"
        f"    source: {{type: files, options: {{path: {folder / 'data'}}}}}\n"
        "    features: {numeric: [temperature, load, vibration]}\n"
        "    window: {span: 1d, timestamp: ts}\n"
        f"    reference: {{path: {folder / 'ref.csv'}}}\n"
        "    max_rows: 100000\n"
        f"    measures: {{ks: {{threshold: {threshold}}}}}\n"
        "    drift: {correction: bonferroni, share: 0.3, consecutive: 1}\n")
    return path


def _states(config: Path) -> list[str]:
    loaded = load_config(config)
    return [w.state for w in make_runner(loaded.monitors[0], loaded.storage.url).tick().windows]


def one_seed(seed: int) -> dict[str, object]:
    """The figures of one seed."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        log = plant_log(seed=seed)
        write_csv(folder / "ref.csv", log.slice(0, REFERENCE_DAYS * ROWS_PER_DAY))
        write_csv(folder / "data" / "part-1.csv", log.slice(REFERENCE_DAYS * ROWS_PER_DAY))
        baseline = _states(_config(folder, "baseline", 0.05))
        auto_config = _config(folder, "auto", "auto")
        result = CliRunner().invoke(main, ["calibrate", "auto", "-c", str(auto_config), "--window-sizes", "144",
                                           "--repetitions", "20", "--json"])
        assert result.exit_code == 0, result.output
        report = CalibrationReport.from_dict(json.loads(result.stdout))
        auto = _states(auto_config)
    after = CHANGE_DAY - REFERENCE_DAYS

    def rate(states: list[str]) -> float:
        return sum(s == "drift" for s in states) / len(states)

    def delay(states: list[str]) -> int | None:
        return next((i for i, s in enumerate(states[after:]) if s == "drift"), None)

    assert report.blocked is not None
    ks = report.blocked.measure("ks")
    return {"seed": seed, "predicted_shuffled": report.result("ks", ROWS_PER_DAY).window_false_positive_rate,
            "predicted_time_ordered": ks.window_fpr, "predicted_auto_held_out": ks.holdout_auto_window_fpr,
            "baseline_stable": rate(baseline[:STABLE_DAYS]), "auto_stable": rate(auto[:STABLE_DAYS]),
            "baseline_delay": delay(baseline), "auto_delay": delay(auto)}


def main_() -> None:
    """Run the seeds, print a table and the totals, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.json")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    rows = [one_seed(seed) for seed in range(1, args.seeds + 1)]
    keys = [key for key in rows[0] if key != "seed"]
    print("seed " + " ".join(f"{key:>24}" for key in keys))
    for row in rows:
        print(f"{row['seed']:>4} " + " ".join(f"{'-' if row[k] is None else round(row[k], 3):>24}" for k in keys))
    totals = {key: sum(r[key] for r in rows if r[key] is not None) / len(rows) for key in keys if "delay" not in key}
    totals["auto_worst_delay"] = max((r["auto_delay"] for r in rows), key=lambda d: 99 if d is None else d)
    print("mean " + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in totals.items()}))
    args.out.write_text(json.dumps({"seeds": rows, "mean": totals}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main_()

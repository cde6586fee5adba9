"""Case 1 as a per-feature scipy loop: what a user writes without a drift library.

Numeric features: ``ks_2samp``, ``wasserstein_distance``, PSI and Jensen–Shannon (base 2) on
10 reference-quantile bins (``np.quantile`` + ``np.histogram``). Categorical features:
``chi2_contingency`` on the 2 x k table of counts, PSI and Jensen–Shannon on frequencies.
Everything, reference bins and category counts included, is inside the timed call; the Parquet
tables are turned into numpy arrays (float64, object strings) beforehand, untimed.
Run in driftd's venv (numpy + scipy only).
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.common import CASE1_MEASURES, measure, record_from, runner_arguments  # noqa: E402
from benchmarks.data import load_case  # noqa: E402

EPS = 1e-4  # smoothing of empty bins for PSI


def _numeric_hist(ref: np.ndarray, win: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Reference-quantile bin proportions of both samples (outer bins open-ended)."""
    edges = np.quantile(ref, np.linspace(0.0, 1.0, bins + 1))
    edges[0], edges[-1] = -np.inf, np.inf
    edges = np.unique(edges)
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(win, edges)[0] / win.size
    return p, q


def _categorical_counts(ref: np.ndarray, win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples over the union of their categories (hash counting, as pandas does)."""
    counts_r, counts_w = Counter(ref.tolist()), Counter(win.tolist())
    cats = sorted(counts_r.keys() | counts_w.keys())
    return (np.array([counts_r.get(c, 0) for c in cats], dtype=float),
            np.array([counts_w.get(c, 0) for c in cats], dtype=float))


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p = np.clip(p, EPS, None)
    q = np.clip(q, EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _proportions(ref: np.ndarray, win: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "numeric":
        return _numeric_hist(ref, win)
    r, w = _categorical_counts(ref, win)
    return r / r.sum(), w / w.sum()


def per_feature(name: str, kind: str, ref: np.ndarray, win: np.ndarray) -> dict[str, float]:
    """The value (or p-value) of measure ``name`` for one feature."""
    if name == "ks":
        result = stats.ks_2samp(ref, win)
        return {"stat": result.statistic, "p": result.pvalue}
    if name == "wasserstein":
        return {"stat": stats.wasserstein_distance(ref, win)}
    if name == "chi_square":
        r, w = _categorical_counts(ref, win)
        chi2, p, _, _ = stats.chi2_contingency(np.vstack([r, w]), correction=False)
        return {"stat": chi2, "p": p}
    p, q = _proportions(ref, win, kind)
    if name == "psi":
        return {"stat": _psi(p, q)}
    return {"stat": float(jensenshannon(p, q, base=2))}


def all_measures(kind: str, ref: np.ndarray, win: np.ndarray) -> dict[str, float]:
    """Every case-1 measure for one feature, sharing histograms and counts between measures."""
    out: dict[str, float] = {}
    if kind == "numeric":
        p, q = _numeric_hist(ref, win)
        out["ks"] = stats.ks_2samp(ref, win).pvalue
        out["wasserstein"] = stats.wasserstein_distance(ref, win)
    else:
        r, w = _categorical_counts(ref, win)
        out["chi_square"] = stats.chi2_contingency(np.vstack([r, w]), correction=False)[1]
        p, q = r / r.sum(), w / w.sum()
    out["psi"] = _psi(p, q)
    out["jensen_shannon"] = float(jensenshannon(p, q, base=2))
    return out


def main() -> None:
    """Time the loop for one measure (or ``all``) and print the JSON line."""
    args = runner_arguments(__doc__.splitlines()[0], [*CASE1_MEASURES, "all"], [1])
    case = load_case(args.case)
    columns: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name in case.numeric:
        columns.append(("numeric", case.reference.column(name).to_numpy(), case.window.column(name).to_numpy()))
    for name in case.categorical:
        columns.append(("categorical", np.asarray(case.reference.column(name).to_pylist(), dtype=object),
                        np.asarray(case.window.column(name).to_pylist(), dtype=object)))

    if args.measure == "all":
        run: Callable[[], object] = lambda: [all_measures(kind, r, w) for kind, r, w in columns]  # noqa: E731
    else:
        kinds = CASE1_MEASURES[args.measure]
        run = lambda: [per_feature(args.measure, kind, r, w) for kind, r, w in columns if kind in kinds]  # noqa: E731
    timing = measure(run, repeat=args.repeat, warmup=args.warmup)
    features = len(timing.result)
    record_from("scipy_loop", args.case, args.measure, timing, version=f"scipy {__import__('scipy').__version__}",
                notes=f"{features} features; reference bins/counts computed inside the timed call").emit()


if __name__ == "__main__":
    main()

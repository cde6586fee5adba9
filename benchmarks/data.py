"""Seeded benchmark data, written once as Parquet so every runner reads identical rows.

Three cases (see issue 3, "Done when"):

* case 1 — 50 numeric + 10 categorical features, 100,000-row reference and 100,000-row window;
  a few features drift (mean shift, scale change, heavier tail, category re-weighting), the rest
  are drawn from the reference distribution.
* case 2 — 2,000 + 2,000 rows, 32 numeric features, a mild multivariate shift (MMD test).
* case 3 — 10,000 + 10,000 rows, 64 numeric features, the same kind of mild shift.

Usage: ``python benchmarks/data.py [--cases 1,2,3] [--force]``; runners call :func:`load_case`,
which generates the files on first use. Files live in ``benchmarks/.data/`` (git-ignored).
Only numpy and pyarrow are needed, so both driftd's venv and the peers venv can run this.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent / ".data"
SEED = 20240603
#: Bump when the generator changes, so stale files are regenerated.
DATA_VERSION = 1

CASE1_ROWS = 100_000
CASE1_NUMERIC = 50
CASE1_CATEGORICAL = 10
#: Numeric features of case 1 that drift in the window, and how.
CASE1_NUMERIC_DRIFT = {"num_03": "mean", "num_11": "scale", "num_24": "mean", "num_37": "tail", "num_45": "mean"}
#: Categorical features of case 1 whose category weights change in the window.
CASE1_CATEGORICAL_DRIFT = ("cat_2", "cat_7")

#: (rows per side, features, features shifted, mean shift in units of the feature's sd).
MULTIVARIATE_CASES = {2: (2_000, 32, 4, 0.06), 3: (10_000, 64, 4, 0.06)}


@dataclass(frozen=True)
class Case:
    """One benchmark case: the reference and window tables and which columns are which."""

    number: int
    reference: pa.Table
    window: pa.Table
    numeric: list[str]
    categorical: list[str]

    def numeric_array(self, table: pa.Table) -> np.ndarray:
        """The numeric columns of ``table`` as a C-ordered float64 (rows, features) array."""
        return np.column_stack([table.column(name).to_numpy() for name in self.numeric]).astype(np.float64)


def _numeric_column(rng: np.random.Generator, family: int, loc: float, scale: float, rows: int,
                   drift: str | None) -> np.ndarray:
    """One numeric feature of distribution ``family`` (0..4), so the features are not all Gaussian."""
    shift = 0.05 * scale if drift == "mean" else 0.0
    spread = 1.1 if drift == "scale" else 1.0
    if family == 0:
        values = rng.normal(loc + shift, scale * spread, rows)
    elif family == 1:
        values = loc + shift + scale * spread * rng.lognormal(0.0, 0.5, rows)
    elif family == 2:
        values = loc + shift + scale * spread * rng.exponential(1.0, rows)
    elif family == 3:
        values = rng.uniform(loc + shift, loc + shift + scale * spread * 3.0, rows)
    else:
        values = loc + shift + scale * spread * rng.standard_t(8, rows)
    if drift == "tail":
        # Replace 2% of the rows with a far-away component: a change the mean barely shows.
        outliers = rng.random(rows) < 0.02
        values[outliers] = loc + 6.0 * scale + rng.normal(0.0, scale, outliers.sum())
    return values


def _category_weights(rng: np.random.Generator, count: int) -> np.ndarray:
    """Skewed category probabilities."""
    weights = rng.dirichlet(np.full(count, 2.0))
    return weights / weights.sum()


def _categorical_column(rng: np.random.Generator, name: str, rows: int, weights: np.ndarray) -> pa.Array:
    """A dictionary-free string column drawn with ``weights`` (labels ``<name>_v<k>``)."""
    labels = np.array([f"{name}_v{k}" for k in range(len(weights))], dtype=object)
    codes = rng.choice(len(weights), size=rows, p=weights)
    return pa.array(labels[codes], type=pa.string())


def generate_case1(seed: int = SEED) -> tuple[pa.Table, pa.Table]:
    """Reference and window tables of case 1."""
    rng = np.random.default_rng(seed)
    reference: dict[str, pa.Array] = {}
    window: dict[str, pa.Array] = {}
    for index in range(CASE1_NUMERIC):
        name = f"num_{index:02d}"
        loc, scale = rng.normal(0.0, 3.0), rng.uniform(0.5, 4.0)
        reference[name] = pa.array(_numeric_column(rng, index % 5, loc, scale, CASE1_ROWS, None))
        window[name] = pa.array(_numeric_column(rng, index % 5, loc, scale, CASE1_ROWS,
                                                CASE1_NUMERIC_DRIFT.get(name)))
    for index in range(CASE1_CATEGORICAL):
        name = f"cat_{index}"
        count = 3 + (index * 7) % 18  # 3..20 categories
        weights = _category_weights(rng, count)
        reference[name] = _categorical_column(rng, name, CASE1_ROWS, weights)
        if name in CASE1_CATEGORICAL_DRIFT:
            weights = 0.9 * weights + 0.1 * np.roll(weights, 1)
        window[name] = _categorical_column(rng, name, CASE1_ROWS, weights)
    return pa.table(reference), pa.table(window)


def generate_multivariate(number: int, seed: int = SEED) -> tuple[pa.Table, pa.Table]:
    """Reference and window tables of case 2 or 3: correlated Gaussians, a mild mean shift."""
    rows, features, shifted, shift = MULTIVARIATE_CASES[number]
    rng = np.random.default_rng([seed, number])
    # A random correlation structure shared by both sides.
    mixing = rng.normal(size=(features, features)) / np.sqrt(features)
    mixing += np.eye(features)
    scales = rng.uniform(0.5, 3.0, features)
    reference = (rng.normal(size=(rows, features)) @ mixing) * scales
    window = (rng.normal(size=(rows, features)) @ mixing) * scales
    sd = reference.std(axis=0)
    window[:, :shifted] += shift * sd[:shifted]
    names = [f"f{index:02d}" for index in range(features)]
    to_table = lambda array: pa.table({name: array[:, i] for i, name in enumerate(names)})  # noqa: E731
    return to_table(reference), to_table(window)


def case_paths(number: int) -> tuple[Path, Path]:
    """Where case ``number``'s reference and window Parquet files live."""
    return (DATA_DIR / f"case{number}-v{DATA_VERSION}-reference.parquet",
            DATA_DIR / f"case{number}-v{DATA_VERSION}-window.parquet")


def write_case(number: int, force: bool = False) -> tuple[Path, Path]:
    """Generate case ``number`` and write it, unless its files already exist."""
    ref_path, win_path = case_paths(number)
    if ref_path.exists() and win_path.exists() and not force:
        return ref_path, win_path
    reference, window = generate_case1() if number == 1 else generate_multivariate(number)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    for table, path in ((reference, ref_path), (window, win_path)):
        tmp = path.with_suffix(".parquet.partial")
        pq.write_table(table, tmp)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return ref_path, win_path


def load_case(number: int) -> Case:
    """Read case ``number`` (generating it on first use)."""
    ref_path, win_path = write_case(number)
    reference, window = pq.read_table(ref_path), pq.read_table(win_path)
    numeric = [name for name in reference.column_names if not pa.types.is_string(reference.schema.field(name).type)]
    categorical = [name for name in reference.column_names if name not in numeric]
    return Case(number, reference, window, numeric, categorical)


def main() -> None:
    """Write the requested cases."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="1,2,3", help="comma-separated case numbers")
    parser.add_argument("--force", action="store_true", help="regenerate even if the files exist")
    args = parser.parse_args()
    for number in (int(part) for part in args.cases.split(",")):
        for path in write_case(number, force=args.force):
            print(path)


if __name__ == "__main__":
    main()

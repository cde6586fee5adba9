"""Reference domains: reading them, turning columns into clean feature values, summarising."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pyarrow.ipc
import pyarrow.json
import pyarrow.parquet

from monitor.config import FeaturesConfig, ReferenceConfig
from monitor.divergence import (
    CategoricalSummary,
    CategoricalWindow,
    FeatureSummary,
    MultivariateSummary,
    ReferenceSummary,
    map_features,
    summarize_multivariate,
    summarize_numeric,
)
from monitor.domain.records import NewReference
from monitor.domain.segment_keys import segment_keys, top_segments

READERS = {
    ".csv": lambda path: pyarrow.csv.read_csv(path),
    ".parquet": lambda path: pyarrow.parquet.read_table(path),
    ".pq": lambda path: pyarrow.parquet.read_table(path),
    ".jsonl": lambda path: pyarrow.json.read_json(path),
    ".ndjson": lambda path: pyarrow.json.read_json(path),
}


class ReferenceDataError(Exception):
    """A reference domain cannot be read or summarised."""


def read_table(path: str | Path) -> pa.Table:
    """Read a CSV, Parquet or JSON-lines file with pyarrow."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ReferenceDataError(f"{path}: unknown file type (use {', '.join(sorted(READERS))})")
    try:
        return reader(str(path))
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: file not found") from None
    except (pa.ArrowException, OSError) as error:
        raise ReferenceDataError(f"{path}: cannot read: {error}") from None


def reference_columns(path: str | Path) -> list[str]:
    """The column names of a CSV, Parquet or JSON-lines file, reading as little of it as the format allows."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return list(pyarrow.csv.open_csv(str(path)).schema.names)
        if suffix in (".parquet", ".pq"):
            return list(pyarrow.parquet.read_schema(str(path)).names)
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: file not found") from None
    except (pa.ArrowException, OSError) as error:
        raise ReferenceDataError(f"{path}: cannot read: {error}") from None
    return list(read_table(path).column_names)


def numeric_values(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Finite float64 values of a numeric column; nulls, NaN and inf are dropped.

    Raises TypeError naming the column when it does not hold numbers.
    """
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_boolean(kind) or pa.types.is_null(kind)):
        raise TypeError(f"column {name!r} holds {kind}, not numbers")
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    with np.errstate(over="ignore", invalid="ignore"):
        total = values.sum()
    if math.isfinite(total):  # NaN and inf carry into the sum: every value is finite
        return values
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


def categorical_strings(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """A categorical column in its text form (nulls kept); TypeError naming the column when it has none."""
    try:
        return pc.cast(column, pa.string())
    except pa.ArrowNotImplementedError:
        raise TypeError(f"column {name!r} holds {column.type}, which has no text form") from None


def categorical_values(column: pa.ChunkedArray, name: str) -> np.ndarray:
    """Non-null values of a categorical column, as strings."""
    return np.asarray(pc.drop_null(categorical_strings(column, name)).to_pylist(), dtype=object)


def summarize_categorical_column(column: pa.ChunkedArray, name: str) -> CategoricalSummary | None:
    """Category counts of a column counted by Arrow (no Python string per row); None when all null."""
    counted = CategoricalWindow.from_arrow(categorical_strings(column, name))
    return CategoricalSummary(counted.categories, counted.counts) if counted.n else None


def feature_values(table: pa.Table, name: str, kind: str) -> np.ndarray:
    """Clean values of one feature; KeyError when the column is absent."""
    if name not in table.column_names:
        raise KeyError(f"column {name!r} is missing")
    column = table.column(name)
    return numeric_values(column, name) if kind == "numeric" else categorical_values(column, name)


def feature_kinds(features: FeaturesConfig) -> dict[str, str]:
    """Feature name → ``numeric`` or ``categorical``."""
    return {**{name: "numeric" for name in features.numeric}, **{name: "categorical" for name in features.categorical}}


def _multivariate(table: pa.Table, numeric: list[str], max_sample: int) -> MultivariateSummary | None:
    """The multivariate side over the rows whose numeric features are all finite (None if < 2)."""
    if not numeric:
        return None
    columns = np.column_stack([pc.cast(table.column(name), pa.float64()).to_numpy(zero_copy_only=False)
                               for name in numeric])
    complete = columns[np.isfinite(columns).all(axis=1)]
    return summarize_multivariate(complete, numeric, max_sample=max_sample) if len(complete) >= 2 else None


def summarize_table(table: pa.Table, features: FeaturesConfig, bins: int, max_rows: int, origin: str,
                    multivariate_sample: int = 2_000) -> NewReference:
    """Summarise a reference table; sub-samples (seeded) to ``max_rows`` rows first."""
    summary, rows = summarize_rows(table, features, bins, max_rows, origin, multivariate_sample)
    return NewReference(summary=summary.to_bytes(), rows=rows, features=feature_kinds(features), origin=origin)


def reference_from_file(path: str | Path, features: FeaturesConfig, reference: ReferenceConfig) -> NewReference:
    """The reference version a monitor stores from a file (its ``reference.path``)."""
    return summarize_table(read_table(path), features, reference.bins, reference.max_rows, origin=f"file:{path}",
                           multivariate_sample=reference.multivariate_sample)


def summarize_rows(table: pa.Table, features: FeaturesConfig, bins: int, max_rows: int, origin: str,
                   multivariate_sample: int | None = 2_000) -> tuple[ReferenceSummary, int]:
    """The summary a reference version of these rows holds, and the rows it was built from.

    Sub-samples (seeded) to ``max_rows`` rows first; ``multivariate_sample=None`` leaves out the
    multivariate side. ReferenceDataError names every column that cannot be summarised.
    """
    if table.num_rows > max_rows:
        keep = np.sort(np.random.default_rng(0).choice(table.num_rows, size=max_rows, replace=False))
        table = table.take(pa.array(keep))
    kinds = feature_kinds(features)
    summaries: dict[str, FeatureSummary] = {}
    missing: dict[str, int] = {}
    problems = []
    outcomes = map_features(lambda item: _summarize_feature(table, *item, bins), list(kinds.items()),
                            table.num_rows * len(kinds))
    for name, outcome in zip(kinds, outcomes):
        if isinstance(outcome, Exception):
            problems.append(str(outcome).strip("'\""))
            continue
        missing[name] = table.num_rows - (outcome.n if outcome is not None else 0)
        if outcome is None:
            problems.append(f"column {name!r} has no usable values")
        else:
            summaries[name] = outcome
    if problems:
        raise ReferenceDataError(f"reference from {origin}: " + "; ".join(problems))
    multivariate = None if multivariate_sample is None else _multivariate(table, features.numeric,
                                                                          multivariate_sample)
    segments = _segments(table, features, bins) if features.segment_by else {}
    return ReferenceSummary(summaries, multivariate, missing, table.num_rows, segments), table.num_rows


def _segments(table: pa.Table, features: FeaturesConfig, bins: int) -> dict[str, ReferenceSummary]:
    """Each of the ``max_segments`` most frequent segments' own summary (features without values left out)."""
    try:
        keys = segment_keys(table, features.segment_by)
    except KeyError as error:
        raise ReferenceDataError(f"reference: {error.args[0]}") from None
    found = {}
    for name in top_segments(keys, features.max_segments):
        rows = table.filter(pa.array(keys == name))
        summaries: dict[str, FeatureSummary] = {}
        missing = {}
        for feature, kind in feature_kinds(features).items():
            summary = _summarize_feature(rows, feature, kind, bins)
            if isinstance(summary, Exception):  # the whole table's columns were read already: cannot happen
                raise ReferenceDataError(f"reference: {summary}")
            missing[feature] = rows.num_rows - (summary.n if summary is not None else 0)
            if summary is not None:
                summaries[feature] = summary
        found[name] = ReferenceSummary(summaries, None, missing, rows.num_rows)
    return found


def _summarize_feature(table: pa.Table, name: str, kind: str, bins: int) -> FeatureSummary | Exception | None:
    """One feature's summary; None when it has no usable values; the KeyError/TypeError that names a bad column."""
    if name not in table.column_names:
        return KeyError(f"column {name!r} is missing")
    try:
        if kind != "numeric":
            return summarize_categorical_column(table.column(name), name)
        values = numeric_values(table.column(name), name)
    except TypeError as error:
        return error
    return summarize_numeric(values, bins) if len(values) else None


def table_to_bytes(table: pa.Table) -> bytes:
    """Arrow IPC stream bytes (no pickle) for rows waiting in SQL."""
    sink = io.BytesIO()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def table_from_bytes(data: bytes) -> pa.Table:
    """The table ``table_to_bytes`` wrote."""
    return pyarrow.ipc.open_stream(data).read_all()

"""Which segment each row belongs to: the values of the ``features.segment_by`` columns, as one name."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The name of a missing segment value.
MISSING = "(missing)"


def segment_keys(table: pa.Table, by: Sequence[str]) -> np.ndarray:
    """Each row's segment name, e.g. ``site=north`` or ``site=north,line=2``; KeyError names a missing column."""
    parts = []
    for column in by:
        if column not in table.column_names:
            raise KeyError(f"segment column {column!r} is missing")
        values = pc.cast(table.column(column), pa.string()).to_pylist()
        parts.append([f"{column}={MISSING if value is None else value}" for value in values])
    return np.array([",".join(names) for names in zip(*parts)], dtype=object)


def top_segments(keys: np.ndarray, limit: int) -> list[str]:
    """The ``limit`` most frequent segment names (ties by name), most frequent first."""
    counted = Counter(keys.tolist())
    return [name for name, _ in sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:limit]]

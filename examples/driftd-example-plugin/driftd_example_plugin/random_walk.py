"""The ``random_walk`` connector: a seeded random walk with an id column and an optional drift."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from monitor.plugin import Batch, Connector, ConnectorError, Cursor, parse_options

#: Steps drawn per random block; block ``b`` depends only on ``(seed, b)``, so any row can be rebuilt.
BLOCK_ROWS = 1024

#: The columns of every batch.
SCHEMA = pa.schema([("id", pa.int64()), ("value", pa.float64()), ("noise", pa.float64())])


class RandomWalkOptions(BaseModel):
    """Options of the ``random_walk`` connector."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(default=0, ge=0)
    step: float = Field(default=1.0, gt=0, description="standard deviation of one step")
    drift: float = Field(default=0.0, description="mean of one step: 0 is a driftless walk")
    total_rows: int | None = Field(default=None, ge=0, description="stop after this many rows")


class RandomWalkConnector(Connector):
    """``value`` walks by a N(drift, step) step per row, ``noise`` is N(0, 1); the cursor is the row count."""

    type_name = "random_walk"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(RandomWalkOptions, self.options, "random_walk")

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return rows ``cursor`` up to ``cursor + max_rows`` (or ``total_rows``)."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        start = 0 if cursor is None else cursor
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ConnectorError(f"random_walk connector: invalid cursor {cursor!r}, expected a row count")
        stop = start + max_rows
        if self.config.total_rows is not None:
            stop = min(stop, self.config.total_rows)
        if stop <= start:
            return Batch(SCHEMA.empty_table(), cursor)
        first, last = start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
        level = sum(self._block(b)[0].sum() for b in range(first))
        steps = np.concatenate([self._block(b)[0] for b in range(first, last + 1)])
        noise = np.concatenate([self._block(b)[1] for b in range(first, last + 1)])
        offset = start - first * BLOCK_ROWS
        values = (level + np.cumsum(steps))[offset:offset + stop - start]
        return Batch(pa.table({
            "id": np.arange(start, stop, dtype=np.int64),
            "value": values,
            "noise": noise[offset:offset + stop - start],
        }, schema=SCHEMA), stop)

    def _block(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        return _draw(self.config.seed, self.config.step, self.config.drift, block)


@lru_cache(maxsize=256)
def _draw(seed: int, step: float, drift: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """One block's steps and noise, the same for the same arguments."""
    rng = np.random.default_rng([seed, block])
    return rng.normal(drift, step, BLOCK_ROWS), rng.normal(0.0, 1.0, BLOCK_ROWS)

"""The ``synthetic`` connector: a seeded sensor stream with scheduled, reproducible shifts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Mapping, Union

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.plugin import (
    Backlog,
    Batch,
    Connector,
    ConnectorError,
    Cursor,
    hookimpl,
    parse_options,
)

#: Rows generated per random block; row ``i`` depends only on ``(seed, i // BLOCK_ROWS)``.
BLOCK_ROWS = 1024


@dataclass(frozen=True)
class _Sensor:
    mean: float
    std: float
    low: float = -np.inf
    high: float = np.inf
    lognormal: bool = False

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        if not self.lognormal:
            return rng.normal(self.mean, self.std, size)
        sigma2 = np.log1p((self.std / self.mean) ** 2)
        return rng.lognormal(np.log(self.mean) - sigma2 / 2, np.sqrt(sigma2), size)


_SENSORS: dict[str, _Sensor] = {
    "temperature": _Sensor(21.0, 1.5),
    "pressure": _Sensor(1013.0, 8.0, low=0.0),
    "humidity": _Sensor(45.0, 6.0, low=0.0, high=100.0),
    "vibration": _Sensor(0.5, 0.1, low=0.0, lognormal=True),
    "voltage": _Sensor(230.0, 2.0),
    "rpm": _Sensor(1500.0, 50.0, low=0.0),
}
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "status": (("ok", "idle", "maintenance"), (0.8, 0.15, 0.05)),
    "site": (("north", "south", "east", "west"), (0.25, 0.25, 0.25, 0.25)),
}

#: The numeric sensor columns, in schema order.
NUMERIC_FEATURES: tuple[str, ...] = tuple(_SENSORS)
#: The categorical columns, in schema order.
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(_CATEGORIES)

#: The columns of every batch.
SCHEMA = pa.schema(
    [pa.field("ts", pa.timestamp("us", tz="UTC"))]
    + [pa.field(name, pa.float64()) for name in NUMERIC_FEATURES]
    + [pa.field(name, pa.string()) for name in CATEGORICAL_FEATURES]
)


def _numeric(feature: str) -> str:
    if feature not in _SENSORS:
        raise ValueError(f"must be a numeric feature, one of {', '.join(NUMERIC_FEATURES)}")
    return feature


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: The highest row number a shift or ``total_rows`` may name.
MAX_ROW = 10**15


class _ShiftBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)

    start_row: int = Field(ge=0, le=MAX_ROW)
    end_row: int | None = Field(default=None, ge=1, le=MAX_ROW)

    @model_validator(mode="after")
    def _end_after_start(self) -> _ShiftBase:
        if self.end_row is not None and self.end_row <= self.start_row:
            raise ValueError("end_row must be greater than start_row")
        return self


class _NumericShift(_ShiftBase):
    feature: str

    @field_validator("feature")
    @classmethod
    def _numeric_feature(cls, feature: str) -> str:
        return _numeric(feature)


class MeanShift(_NumericShift):
    """Add ``amount`` (in the feature's own units) to a numeric feature."""

    kind: Literal["mean_shift"]
    amount: float = Field(ge=-1e12, le=1e12)


class VarianceChange(_NumericShift):
    """Scale a numeric feature's deviation from its mean by ``factor``."""

    kind: Literal["variance_change"]
    factor: float = Field(gt=0, le=1e6)


class NewCategory(_ShiftBase):
    """Give a ``share`` of rows of a categorical feature a category it never had."""

    kind: Literal["new_category"]
    feature: str
    category: str = Field(min_length=1)
    share: float = Field(gt=0, le=1)

    @field_validator("feature")
    @classmethod
    def _categorical(cls, feature: str) -> str:
        if feature not in _CATEGORIES:
            raise ValueError(
                f"must be a categorical feature, one of {', '.join(CATEGORICAL_FEATURES)}"
            )
        return feature

    @model_validator(mode="after")
    def _is_new(self) -> NewCategory:
        if self.category in _CATEGORIES[self.feature][0]:
            raise ValueError(f"category {self.category!r} already exists in {self.feature}")
        return self


class SensorSwap(_ShiftBase):
    """Swap the values of two numeric features (a re-wired sensor)."""

    kind: Literal["sensor_swap"]
    features: list[str] = Field(min_length=2, max_length=2)

    @field_validator("features")
    @classmethod
    def _two_numeric(cls, features: list[str]) -> list[str]:
        for feature in features:
            _numeric(feature)
        if features[0] == features[1]:
            raise ValueError("must name two different features")
        return features


#: One scheduled shift, told apart by its ``kind``.
Shift = Annotated[
    Union[MeanShift, VarianceChange, NewCategory, SensorSwap], Field(discriminator="kind")
]


class SyntheticOptions(BaseModel):
    """Options of the ``synthetic`` connector."""

    model_config = ConfigDict(extra="forbid", strict=False)

    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    start: datetime = Field(default=datetime(2026, 1, 1, tzinfo=timezone.utc), strict=False)
    interval_seconds: float = Field(default=1.0, gt=0, le=86_400 * 3650)
    rows_per_fetch: int = Field(default=1000, gt=0, le=10_000_000)
    total_rows: int | None = Field(default=None, ge=0, le=MAX_ROW)
    shifts: list[Shift] = []



def demo_shifts(start_row: int) -> list[dict[str, Any]]:
    """A shift schedule for the demo: temperature, vibration, status and pressure/humidity move."""
    return [
        {"kind": "mean_shift", "feature": "temperature", "start_row": start_row, "amount": 3.0},
        {"kind": "variance_change", "feature": "vibration", "start_row": start_row, "factor": 3.0},
        {
            "kind": "new_category",
            "feature": "status",
            "start_row": start_row,
            "category": "fault",
            "share": 0.3,
        },
        {"kind": "sensor_swap", "features": ["pressure", "humidity"], "start_row": start_row},
    ]


class SyntheticConnector(Connector):
    """A deterministic multi-sensor stream; the cursor is the number of rows emitted so far."""

    type_name = "synthetic"

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.config = parse_options(SyntheticOptions, self.options, "synthetic")
        start = self.config.start
        if start.tzinfo is None:
            start = start.replace(tzinfo=timezone.utc)
        self._start_us = (start - _EPOCH) // timedelta(microseconds=1)
        self._block: tuple[int, pa.Table] | None = None

    def fetch(self, cursor: Cursor, max_rows: int) -> Batch:
        """Return the next ``min(max_rows, rows_per_fetch)`` rows after ``cursor``."""
        if max_rows < 1:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        offset = 0 if cursor is None else cursor
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ConnectorError(
                f"synthetic connector: invalid cursor {cursor!r}, expected a row count"
            )
        stop = offset + min(max_rows, self.config.rows_per_fetch)
        if self.config.total_rows is not None:
            stop = min(stop, self.config.total_rows)
        if stop <= offset:
            return Batch(SCHEMA.empty_table(), cursor, self._backlog(offset))
        first, last = offset // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
        blocks = [self._generate(block) for block in range(first, last + 1)]
        table = pa.concat_tables(blocks).slice(offset - first * BLOCK_ROWS, stop - offset)
        return Batch(table.combine_chunks(), stop, self._backlog(stop))

    def _backlog(self, position: int) -> Backlog | None:
        """Rows left of a finite stream; an endless one (no ``total_rows``) cannot be behind or caught up."""
        total = self.config.total_rows
        return None if total is None else Backlog(rows=max(0, total - position))

    def _generate(self, block: int) -> pa.Table:
        if self._block is not None and self._block[0] == block:
            return self._block[1]
        rows = np.arange(block * BLOCK_ROWS, (block + 1) * BLOCK_ROWS, dtype=np.int64)
        rng = np.random.default_rng([self.config.seed, block])
        values = {name: s.sample(rng, BLOCK_ROWS) for name, s in _SENSORS.items()}
        centers = {name: np.full(BLOCK_ROWS, s.mean) for name, s in _SENSORS.items()}
        labels = {
            name: np.asarray(cats, dtype=object)[rng.choice(len(cats), BLOCK_ROWS, p=probs)]
            for name, (cats, probs) in _CATEGORIES.items()
        }
        for index, shift in enumerate(self.config.shifts):
            active = rows >= shift.start_row
            if shift.end_row is not None:
                active &= rows < shift.end_row
            if not active.any():
                continue
            if isinstance(shift, (MeanShift, VarianceChange)):
                x, c = values[shift.feature], centers[shift.feature]
                if isinstance(shift, MeanShift):
                    x[active] += shift.amount
                    c[active] += shift.amount
                else:
                    x[active] = c[active] + (x[active] - c[active]) * shift.factor
                # A shifted sensor still reads within its physical range.
                np.clip(x, _SENSORS[shift.feature].low, _SENSORS[shift.feature].high, out=x)
            elif isinstance(shift, NewCategory):
                # A stream of its own, so the base columns' draws stay as they are without it.
                stream = np.random.default_rng([self.config.seed, block, index + 1])
                draw = stream.random(BLOCK_ROWS)
                labels[shift.feature][active & (draw < shift.share)] = shift.category
            else:
                a, b = shift.features
                for arrays in (values, centers):
                    arrays[a][active], arrays[b][active] = arrays[b][active], arrays[a][active]
        step_us = self.config.interval_seconds * 1e6
        ts_us = self._start_us + np.rint(rows * step_us).astype(np.int64)
        columns: list[pa.Array] = [pa.array(ts_us, type=pa.timestamp("us", tz="UTC"))]
        columns += [pa.array(values[name]) for name in NUMERIC_FEATURES]
        columns += [pa.array(labels[name], type=pa.string()) for name in CATEGORICAL_FEATURES]
        table = pa.Table.from_arrays(columns, schema=SCHEMA)
        self._block = (block, table)
        return table

    def close(self) -> None:
        """Drop the cached block."""
        self._block = None


@hookimpl
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Register the ``synthetic`` connector."""
    return {"synthetic": SyntheticConnector}

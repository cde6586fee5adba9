"""Reference-side summaries, per feature and multivariate: computed once per reference version,
reused for every window."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy.spatial.distance import pdist

from monitor.divergence.npz import read_npz

_FORMAT_VERSION = 1
_MULTIVARIATE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class NumericSummary:
    """A numeric reference feature: its sorted sample, quantile bins and moments.

    Bins are right-closed: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``; a value's bin index is
    ``np.searchsorted(edges, value, side="left")``. The first and last bins are out of range:
    ``e0`` is the float just below the reference minimum and ``e_last`` its maximum, so a window's
    mass below the minimum or above the maximum always lands in a bin the reference leaves empty
    (a constant reference has three bins: below, at and above its value). A summary built without
    them (format version 1, stored before they existed) gets them on construction, its bins and
    probabilities rebuilt from the stored sorted sample.
    """

    sorted_values: np.ndarray
    edges: np.ndarray
    probs: np.ndarray
    mean: float
    std: float

    def __post_init__(self) -> None:
        if self.sorted_values.size and not has_range_bins(self.edges, self.sorted_values):
            edges = with_range_bins(self.edges, self.sorted_values)
            object.__setattr__(self, "edges", edges)
            object.__setattr__(self, "probs", bin_proportions(edges, self.sorted_values))

    @property
    def n(self) -> int:
        """The reference sample size."""
        return int(self.sorted_values.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumericSummary):
            return NotImplemented
        return (
            _arrays_equal(self.sorted_values, other.sorted_values)
            and _arrays_equal(self.edges, other.edges)
            and _arrays_equal(self.probs, other.probs)
            and _floats_equal(self.mean, other.mean)
            and _floats_equal(self.std, other.std)
        )


@dataclass(frozen=True)
class CategoricalSummary:
    """A categorical reference feature: its sorted categories and their counts."""

    categories: tuple[str, ...]
    counts: np.ndarray

    @property
    def n(self) -> int:
        """The reference sample size."""
        return int(self.counts.sum())

    @cached_property
    def index(self) -> dict[str, int]:
        """Each category's position in ``categories``."""
        return {category: i for i, category in enumerate(self.categories)}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoricalSummary):
            return NotImplemented
        return self.categories == other.categories and _arrays_equal(self.counts, other.counts)


FeatureSummary = NumericSummary | CategoricalSummary


def bin_indices(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The right-closed bin index of each value (0 .. len(edges))."""
    return np.searchsorted(edges, values, side="left")


def has_range_bins(edges: np.ndarray, sorted_values: np.ndarray) -> bool:
    """Whether ``edges`` open with the below-minimum bin and close with the above-maximum one."""
    return (edges.size >= 2 and edges[0] == np.nextafter(sorted_values[0], -np.inf)
            and edges[-1] == sorted_values[-1])


def with_range_bins(edges: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Interior quantile ``edges`` framed by the out-of-range edges: just below the min, and the max."""
    low, high = np.nextafter(sorted_values[0], -np.inf), sorted_values[-1]
    inner = np.asarray(edges, dtype=np.float64)
    inner = inner[(inner > low) & (inner < high)]
    return np.concatenate([[low], inner, [high]])


def bin_proportions(edges: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """The share of ``sorted_values`` in each right-closed bin of ``edges``."""
    at_or_below = np.searchsorted(sorted_values, edges, side="right")
    counts = np.diff(at_or_below, prepend=0, append=sorted_values.size)
    return counts / sorted_values.size


def sorted_quantiles(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(sorted_values, q)`` (method "linear", bit for bit) of an already sorted array.

    np.quantile partitions a copy first; on sorted values the two neighbours of each virtual
    index are already in place, and numpy's own interpolation is repeated on them.
    """
    q = np.asarray(q, dtype=np.float64)
    last = sorted_values.size - 1
    virtual = last * q
    below = np.floor(virtual)
    gamma = virtual - below
    low = np.clip(below, 0, last).astype(np.intp)
    low[virtual >= last] = last
    high = np.minimum(low + 1, last)
    a, b = sorted_values[low], sorted_values[high]
    difference = b - a
    result = a + difference * gamma
    upper = gamma >= 0.5  # numpy's _lerp: from the upper neighbour past the middle (monotone, exact at 1)
    result[upper] = (b - difference * (1 - gamma))[upper]
    return result


def summarize_numeric(values: np.ndarray, bins: int = 10) -> NumericSummary:
    """Summarise finite float values into ``bins`` reference-quantile bins plus two out-of-range bins.

    Quantile edges at the reference maximum are dropped (they would leave a bin empty); the
    below-minimum and above-maximum bins frame the rest, so a constant reference has three bins.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    sorted_values = np.sort(np.asarray(values, dtype=np.float64))
    if sorted_values.size == 0:
        raise ValueError("cannot summarise an empty numeric sample")
    quantiles = sorted_quantiles(sorted_values, np.arange(1, bins) / bins)
    edges = with_range_bins(np.unique(quantiles), sorted_values)
    mean = sorted_values.mean()
    return NumericSummary(
        sorted_values=sorted_values,
        edges=edges,
        probs=bin_proportions(edges, sorted_values),
        mean=float(mean),
        std=_std(sorted_values, mean),
    )


def _std(values: np.ndarray, mean: float) -> float:
    """The population standard deviation about ``values.mean()`` in two passes and one temporary (``np.std``
    takes more of both)."""
    centred = np.subtract(values, mean)
    # einsum, not np.dot: BLAS threads cost more than they save at these sizes
    return math.sqrt(float(np.einsum("i,i->", centred, centred)) / values.size)


def summarize_categorical(values: np.ndarray) -> CategoricalSummary:
    """Summarise string values into sorted categories and their counts."""
    if len(values) == 0:
        raise ValueError("cannot summarise an empty categorical sample")
    categories, counts = np.unique(np.asarray(values, dtype=object), return_counts=True)
    return CategoricalSummary(
        categories=tuple(str(c) for c in categories), counts=counts.astype(np.int64)
    )


#: The median-heuristic bandwidth looks at no more than this many sample rows.
BANDWIDTH_ROWS = 2_000


@dataclass(frozen=True)
class MultivariateSummary:
    """The reference side of the multivariate measures, computed once per reference version."""

    features: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    sample: np.ndarray
    bandwidth: float

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numeric arrays (feature names as UTF-8 JSON bytes) that load without pickle."""
        names = json.dumps({"version": _MULTIVARIATE_FORMAT_VERSION, "features": list(self.features)})
        return {
            "features": np.frombuffer(names.encode("utf-8"), dtype=np.uint8),
            "mean": self.mean,
            "std": self.std,
            "sample": self.sample,
            "bandwidth": np.array([self.bandwidth], dtype=np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> MultivariateSummary:
        """Rebuild a summary from the arrays ``to_arrays`` wrote."""
        document = json.loads(np.asarray(arrays["features"], dtype=np.uint8).tobytes())
        if document.get("version") != _MULTIVARIATE_FORMAT_VERSION:
            version = document.get("version")
            raise ValueError(f"unsupported multivariate summary version {version!r}")
        return cls(
            features=tuple(document["features"]),
            mean=np.asarray(arrays["mean"], dtype=np.float64),
            std=np.asarray(arrays["std"], dtype=np.float64),
            sample=np.asarray(arrays["sample"], dtype=np.float64),
            bandwidth=float(np.asarray(arrays["bandwidth"])[0]),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultivariateSummary):
            return NotImplemented
        return (
            self.features == other.features
            and np.array_equal(self.mean, other.mean)
            and np.array_equal(self.std, other.std)
            and np.array_equal(self.sample, other.sample)
            and self.bandwidth == other.bandwidth
        )


def as_rows(values: np.ndarray, columns: int) -> np.ndarray:
    """``values`` as a float64 (rows x columns) matrix; ValueError when it has another shape."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != columns:
        raise ValueError(f"expected a 2-D array with {columns} columns, got shape {array.shape}")
    if len(array) < 2:
        raise ValueError(f"need at least 2 rows, got {len(array)}")
    return array


def summarize_multivariate(
    columns: np.ndarray,
    features: tuple[str, ...] | list[str],
    max_sample: int = 2_000,
    seed: int = 0,
) -> MultivariateSummary:
    """Summarise finite reference rows (n x d, columns in ``features`` order).

    Mean and std come from every row (a zero std becomes 1); the sample is a seeded random
    sub-sample of at most ``max_sample`` standardised rows in random order; the bandwidth is
    the median pairwise Euclidean distance among its first ``BANDWIDTH_ROWS`` rows (1 when
    that median is 0).
    """
    values = as_rows(columns, len(features))
    if max_sample < 2:
        raise ValueError(f"max_sample must be at least 2, got {max_sample}")
    if not np.isfinite(values).all():
        raise ValueError("reference rows must be finite; drop rows with missing values first")
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    std[std == 0] = 1.0
    chosen = np.random.default_rng(seed).permutation(len(values))[:max_sample]
    sample = (values[chosen] - mean) / std
    median = float(np.median(pdist(sample[:BANDWIDTH_ROWS])))
    return MultivariateSummary(
        features=tuple(features),
        mean=mean,
        std=std,
        sample=sample,
        bandwidth=median if median > 0 else 1.0,
    )


@dataclass(frozen=True)
class ReferenceSummary:
    """The summaries of every feature of one reference version, and the multivariate side."""

    features: dict[str, FeatureSummary]
    multivariate: MultivariateSummary | None = None
    #: Each feature's missing values (null, NaN, inf) among ``rows`` reference rows; empty when
    #: the summary predates them (a missing-rate change is then not measured).
    missing: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    #: Each segment's own summary (``features.segment_by``), by segment name.
    segments: dict[str, ReferenceSummary] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialise to an uncompressed ``.npz`` archive that loads without pickle.

        Uncompressed: sorted floats barely compress, and zlib cost more than scoring a window
        (archives written compressed before still load: ``np.load`` reads either).

        Feature names, kinds and categories live in a JSON document stored as UTF-8 bytes
        (numpy's fixed-width strings drop trailing NULs, JSON keeps every string exact);
        arrays are keyed by feature position, never by name.
        """
        meta: list[dict[str, Any]] = []
        arrays: dict[str, np.ndarray] = {}
        for i, (name, summary) in enumerate(self.features.items()):
            if isinstance(summary, NumericSummary):
                meta.append({"name": name, "kind": "numeric"})
                arrays[f"{i}.sorted_values"] = summary.sorted_values
                arrays[f"{i}.edges"] = summary.edges
                arrays[f"{i}.probs"] = summary.probs
                arrays[f"{i}.moments"] = np.array([summary.mean, summary.std], dtype=np.float64)
            elif isinstance(summary, CategoricalSummary):
                meta.append(
                    {"name": name, "kind": "categorical", "categories": list(summary.categories)}
                )
                arrays[f"{i}.counts"] = summary.counts
            else:
                raise TypeError(f"feature {name!r}: not a feature summary: {type(summary)!r}")
            if name in self.missing:
                meta[-1]["missing"] = int(self.missing[name])
        if self.multivariate is not None:
            arrays.update({f"mv.{key}": value for key, value in self.multivariate.to_arrays().items()})
        header: dict[str, Any] = {"version": _FORMAT_VERSION, "features": meta}
        if self.rows:
            header["rows"] = int(self.rows)
        if self.segments:
            header["segments"] = list(self.segments)
            for i, segment in enumerate(self.segments.values()):
                arrays[f"seg.{i}"] = np.frombuffer(segment.to_bytes(), dtype=np.uint8)
        document = json.dumps(header, ensure_ascii=True)
        arrays["meta"] = np.frombuffer(document.encode("ascii"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, multivariate: bool = True) -> ReferenceSummary:
        """Load a summary written by ``to_bytes`` (without its multivariate side unless ``multivariate``)."""
        archive = read_npz(data, lambda name: multivariate or not name.startswith("mv."))
        document = json.loads(archive["meta"].tobytes().decode("ascii"))
        if document.get("version") != _FORMAT_VERSION:
            version = document.get("version")
            raise ValueError(f"unsupported reference summary version {version!r}")
        features: dict[str, FeatureSummary] = {}
        missing = {entry["name"]: int(entry["missing"]) for entry in document["features"] if "missing" in entry}
        rows = int(document.get("rows", 0))
        for i, entry in enumerate(document["features"]):
            if entry["kind"] == "numeric":
                mean, std = archive[f"{i}.moments"]
                features[entry["name"]] = NumericSummary(
                    sorted_values=archive[f"{i}.sorted_values"],
                    edges=archive[f"{i}.edges"],
                    probs=archive[f"{i}.probs"],
                    mean=float(mean),
                    std=float(std),
                )
            elif entry["kind"] == "categorical":
                features[entry["name"]] = CategoricalSummary(
                    categories=tuple(entry["categories"]), counts=archive[f"{i}.counts"]
                )
            else:
                raise ValueError(f"unknown feature kind {entry['kind']!r}")
        joint = {key[3:]: value for key, value in archive.items() if key.startswith("mv.")}
        segments = {name: cls.from_bytes(archive[f"seg.{i}"].tobytes(), multivariate)
                    for i, name in enumerate(document.get("segments", []))}
        return cls(features=features, multivariate=MultivariateSummary.from_arrays(joint) if joint else None,
                   missing=missing, rows=rows, segments=segments)

    @property
    def nbytes(self) -> int:
        """Bytes its arrays take in memory (segments included)."""
        total = sum(summary.sorted_values.nbytes + summary.edges.nbytes + summary.probs.nbytes
                    if isinstance(summary, NumericSummary) else summary.counts.nbytes
                    for summary in self.features.values())
        if self.multivariate is not None:
            total += self.multivariate.sample.nbytes + self.multivariate.mean.nbytes + self.multivariate.std.nbytes
        return total + sum(segment.nbytes for segment in self.segments.values())

def _arrays_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _floats_equal(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))

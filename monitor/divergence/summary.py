"""Reference-side summaries: computed once per reference version, reused for every window."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from monitor.divergence.multivariate import MultivariateSummary

_FORMAT_VERSION = 1


@dataclass(frozen=True)
class NumericSummary:
    """A numeric reference feature: its sorted sample, quantile bins and moments.

    Bins are right-closed: ``(-inf, e0], (e0, e1], ..., (e_last, inf)``; a value's bin index is
    ``np.searchsorted(edges, value, side="left")``.
    """

    sorted_values: np.ndarray
    edges: np.ndarray
    probs: np.ndarray
    mean: float
    std: float

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


def summarize_numeric(values: np.ndarray, bins: int = 10) -> NumericSummary:
    """Summarise finite float values into ``bins`` reference-quantile bins.

    Quantile edges equal to the reference maximum are dropped (they would leave the top bin
    empty), so a constant reference has no edges and a single bin.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    sorted_values = np.sort(np.asarray(values, dtype=np.float64))
    if sorted_values.size == 0:
        raise ValueError("cannot summarise an empty numeric sample")
    quantiles = np.quantile(sorted_values, np.arange(1, bins) / bins)
    edges = np.unique(quantiles)
    edges = edges[edges < sorted_values[-1]]
    counts = np.bincount(bin_indices(edges, sorted_values), minlength=edges.size + 1)
    return NumericSummary(
        sorted_values=sorted_values,
        edges=edges,
        probs=counts / sorted_values.size,
        mean=float(sorted_values.mean()),
        std=float(sorted_values.std()),
    )


def summarize_categorical(values: np.ndarray) -> CategoricalSummary:
    """Summarise string values into sorted categories and their counts."""
    if len(values) == 0:
        raise ValueError("cannot summarise an empty categorical sample")
    categories, counts = np.unique(np.asarray(values, dtype=object), return_counts=True)
    return CategoricalSummary(
        categories=tuple(str(c) for c in categories), counts=counts.astype(np.int64)
    )


@dataclass(frozen=True)
class ReferenceSummary:
    """The summaries of every feature of one reference version, and the multivariate side."""

    features: dict[str, FeatureSummary]
    multivariate: MultivariateSummary | None = None

    def to_bytes(self) -> bytes:
        """Serialise to a compressed ``.npz`` archive that loads without pickle.

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
        if self.multivariate is not None:
            arrays.update({f"mv.{key}": value for key, value in self.multivariate.to_arrays().items()})
        document = json.dumps({"version": _FORMAT_VERSION, "features": meta}, ensure_ascii=True)
        arrays["meta"] = np.frombuffer(document.encode("ascii"), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceSummary:
        """Load a summary written by ``to_bytes``."""
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            document = json.loads(archive["meta"].tobytes().decode("ascii"))
            if document.get("version") != _FORMAT_VERSION:
                version = document.get("version")
                raise ValueError(f"unsupported reference summary version {version!r}")
            features: dict[str, FeatureSummary] = {}
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
            multivariate = {key[3:]: archive[key] for key in archive.files if key.startswith("mv.")}
        if not multivariate:
            return cls(features=features)
        from monitor.divergence.multivariate import MultivariateSummary  # it imports this module

        return cls(features=features, multivariate=MultivariateSummary.from_arrays(multivariate))


def _arrays_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def _floats_equal(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))

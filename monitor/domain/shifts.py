"""What kind of shift a numeric feature shows: the simplest change of the reference that explains the window.

A window is compared with the reference after undoing each candidate change (a shift, a change of
spread, both); the first that leaves no significant Kolmogorov-Smirnov distance names the kind.
A window that still looks like another feature's reference better than its own is a swap; a pair
of features correlated in the reference and no longer is a broken correlation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from monitor.divergence.summary import sorted_quantiles
from monitor.divergence.window import ks_two_sorted

#: The kinds a diagnosis may name (a bounded set: they label a metric).
KINDS = ("location", "scale", "shape", "swap", "correlation", "new_category", "vanished_category", "reweighted",
         "missing_rate", "type_changed", "unclear")


@dataclass(frozen=True)
class Diagnosis:
    """One finding about one feature: its kind, the figures behind it and one sentence."""

    feature: str
    kind: str
    figures: dict[str, float | str]
    sentence: str

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return {"feature": self.feature, "kind": self.kind, "figures": dict(self.figures), "sentence": self.sentence}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Diagnosis:
        """The diagnosis ``as_dict`` wrote."""
        return cls(str(data["feature"]), str(data["kind"]), dict(data.get("figures") or {}),  # type: ignore[arg-type]
                   str(data["sentence"]))


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The two-sample Kolmogorov-Smirnov distance of two sorted samples (``ks_two_sorted``: no full merge)."""
    return ks_two_sorted(a, b)


#: Window quantiles at which :func:`ks_lower_bound` compares the two ECDFs.
_PROBES = np.linspace(0.0, 1.0, 33)


def ks_lower_bound(a: np.ndarray, b: np.ndarray) -> float:
    """A lower bound of ``ks_distance(a, b)`` (sorted samples) from a few of ``b``'s values.

    ``|F_a - F_b|`` at a pooled value, computed as ``ks_distance`` computes it there, so the bound
    never exceeds the distance, not even by a rounding: a candidate whose bound is already too far
    can be dropped without changing any result.
    """
    points = b[np.round(_PROBES * (b.size - 1)).astype(np.intp)]
    gaps = (np.searchsorted(a, points, side="right") / a.size
            - np.searchsorted(b, points, side="right") / b.size)
    return float(np.abs(gaps).max())


def ks_critical(n: int, m: int, alpha: float) -> float:
    """The asymptotic two-sample KS distance that a sample pair of sizes n, m exceeds with probability ``alpha``."""
    return math.sqrt(-0.5 * math.log(alpha / 2)) * math.sqrt((n + m) / (n * m))


def sorted_median(sorted_values: np.ndarray) -> float:
    """``np.median`` of a non-empty sorted array, bit for bit, without its copy and partition."""
    half = sorted_values.size // 2
    if sorted_values.size % 2:
        return float(sorted_values[half])
    return float(np.mean(sorted_values[half - 1:half + 1]))


def _spread(sorted_values: np.ndarray) -> float:
    """A robust standard deviation (IQR / 1.349), the plain one when the IQR is 0."""
    q1, q3 = sorted_quantiles(sorted_values, np.array([0.25, 0.75]))
    spread = float(q3) / 1.349 - float(q1) / 1.349  # scaled first: no overflow near the float64 limit
    return spread if spread > 0 else float(sorted_values.std())


def _skewness(values: np.ndarray) -> float:
    """``scipy.stats.skew`` (biased) in two passes and one temporary, without scipy's per-call checks."""
    centred = values - values.mean()
    m2 = float(np.einsum("i,i->", centred, centred)) / values.size
    m3 = float(np.einsum("i,i,i->", centred, centred, centred)) / values.size
    return m3 / m2 ** 1.5 if m2 > 0 else math.nan


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def numeric_shift(feature: str, reference: np.ndarray, window: np.ndarray, alpha: float,
                  raw: float | None = None, window_sorted: bool = False) -> list[Diagnosis]:
    """The kinds of shift of one numeric feature (sorted reference and window values), strongest first.

    Empty when the window's KS distance from the reference is not significant at ``alpha``. ``raw``
    is that distance when the caller has it; ``window_sorted`` says the window is sorted already.
    """
    window = window if window_sorted else np.sort(window)
    n, m = reference.size, window.size
    critical = ks_critical(n, m, alpha)
    raw = ks_distance(reference, window) if raw is None else raw
    if raw <= critical:
        return []
    ref_median, win_median = sorted_median(reference), sorted_median(window)
    ref_spread, win_spread = _spread(reference), _spread(window)
    ref_sd = float(reference.std()) or 1.0
    ratio = win_spread / ref_spread if ref_spread > 0 else math.inf
    shift = win_median - ref_median
    shifted = ks_distance(reference, window - shift)
    rescaled = ks_distance(reference, ref_median + (window - ref_median) / ratio) if 0 < ratio < math.inf else 1.0

    def location() -> Diagnosis:
        return _location(feature, reference, window, shift, ref_sd, abs(_skewness(reference)) > 1)

    scale = Diagnosis(feature, "scale", {"spread_ratio": ratio, "reference_spread": ref_spread,
                                         "window_spread": win_spread},
                      f"{feature}: spread ×{_fmt(ratio)} of the reference's")
    # each candidate is merged only when the decision needs it, and only the named kind is described
    if shifted <= critical and (rescaled > critical or shifted <= rescaled):
        return [location()]
    if rescaled <= critical:
        return [scale]
    scaled = ks_distance(reference, ref_median + (window - win_median) * (1 / ratio if ratio > 0 else 1.0))
    if scaled <= critical:
        return [location(), scale] if abs(shift) / ref_sd > abs(math.log(ratio)) else [scale, location()]
    return [_shape(feature, reference, window, raw)]


def _location(feature: str, reference: np.ndarray, window: np.ndarray, shift: float, ref_sd: float,
              skewed: bool) -> Diagnosis:
    mean_shift = (float(window.mean()) - float(reference.mean())) / ref_sd
    figures: dict[str, float | str] = {"shift_sd": mean_shift, "median_shift": shift}
    if skewed:
        quantiles = np.array([0.1, 0.25, 0.5, 0.75, 0.9])
        moved = sorted_quantiles(window, quantiles) - sorted_quantiles(reference, quantiles)  # np.quantile's, no copy
        figures.update({f"q{int(q * 100)}_shift": float(d) for q, d in zip(quantiles, moved)})
        direction = "up" if shift > 0 else "down"
        return Diagnosis(feature, "location", figures,
                         f"{feature}: median {direction} by {_fmt(abs(shift))} (skewed: quantiles moved "
                         f"{_fmt(float(moved[0]))} to {_fmt(float(moved[-1]))})")
    direction = "up" if mean_shift > 0 else "down"
    return Diagnosis(feature, "location", figures,
                     f"{feature}: mean {direction} {_fmt(abs(mean_shift))} reference sd")


def _shape(feature: str, reference: np.ndarray, window: np.ndarray, raw: float) -> Diagnosis:
    """A change of shape: the share outside the reference's range, or the window's new mode."""
    low, high = float(reference[0]), float(reference[-1])
    outside = float(np.mean((window < low) | (window > high)))
    edges = np.quantile(reference, np.linspace(0, 1, 21))
    ref_share = np.diff(np.searchsorted(reference, edges, side="right")) / reference.size
    win_share = np.diff(np.searchsorted(window, edges, side="right")) / window.size
    excess = win_share - ref_share
    top = int(np.argmax(excess))
    figures: dict[str, float | str] = {"ks": raw, "outside_range_share": outside,
                                       "mode_at": float((edges[top] + edges[top + 1]) / 2),
                                       "mode_excess_share": float(excess[top])}
    if outside >= 0.05 and outside >= excess[top]:
        return Diagnosis(feature, "shape", figures,
                         f"{feature}: {outside:.0%} of values outside the reference range [{_fmt(low)}, {_fmt(high)}]")
    return Diagnosis(feature, "shape", figures,
                     f"{feature}: shape changed: {excess[top]:.0%} more mass near {_fmt(figures['mode_at'])} "
                     "(a new mode or tail)")  # type: ignore[arg-type]


#: A drifted feature's window is compared with at most this many other references (the nearest by median).
SWAP_CANDIDATES = 10


def swaps(drifted: dict[str, np.ndarray], references: dict[str, np.ndarray], alpha: float,
          own_distances: dict[str, float] | None = None, sorted_windows: bool = False) -> list[Diagnosis]:
    """Drifted features whose window matches another numeric feature's reference (and not its own).

    Only references whose middle 98% holds the window's median are candidates, the
    ``SWAP_CANDIDATES`` nearest by median (in their robust sd): the cost stays linear in features.
    A candidate whose KS lower bound (:func:`ks_lower_bound`) is past every candidate's critical
    distance, or not below the best so far nor the window's own distance, cannot change the answer
    and is not merged. ``own_distances``: each window's KS distance from its own reference, when the
    caller has it; ``sorted_windows``: the windows are sorted already.
    """
    found = []
    def at(r: np.ndarray, q: float) -> float:  # a quantile of a sorted array, without sorting it again
        return float(r[int(round(q * (r.size - 1)))])

    middles = {name: (at(r, 0.01), at(r, 0.5), at(r, 0.99), (at(r, 0.75) - at(r, 0.25)) / 1.349 or float(r.std()))
               for name, r in references.items()}
    for feature, window in drifted.items():
        window = window if sorted_windows else np.sort(window)
        own = (own_distances or {}).get(feature)
        if own is None:
            own = ks_distance(references[feature], window)
        median = sorted_median(window)
        near = sorted((abs(median - mid) / (spread or 1.0), name)
                      for name, (low, mid, high, spread) in middles.items()
                      if name != feature and low <= median <= high)
        best, best_name = math.inf, None
        candidates = [other for _, other in near[:SWAP_CANDIDATES]]
        # past every candidate's critical distance: such a candidate could only ever hide a farther one
        critical = max((ks_critical(references[other].size, window.size, alpha) for other in candidates), default=0.0)
        for other in candidates:
            bound = ks_lower_bound(references[other], window)
            if bound > critical or bound >= min(best, own):
                continue
            distance = ks_distance(references[other], window)
            if distance < best:
                best, best_name = distance, other
        if best_name is None:
            continue
        if best <= ks_critical(references[best_name].size, window.size, alpha) and best < own:
            found.append(Diagnosis(feature, "swap", {"looks_like": best_name, "ks_to_other": best, "ks_to_own": own},
                                   f"{feature}: values now look like {best_name}'s (swap?)"))
    return found


def broken_correlations(reference: np.ndarray, window: np.ndarray, names: tuple[str, ...], alpha: float,
                        min_correlation: float = 0.5, min_change: float = 0.3) -> list[Diagnosis]:
    """Pairs correlated in the reference (|r| ≥ ``min_correlation``) whose window correlation differs.

    Fisher's z test per pair, Bonferroni across the pairs tested at ``alpha``; the change must also
    reach ``min_change``. One diagnosis for each feature of such a pair.
    """
    if reference.shape[0] < 4 or window.shape[0] < 4 or len(names) < 2:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        ref_corr = np.corrcoef(reference, rowvar=False)
        win_corr = np.corrcoef(window, rowvar=False)
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))
             if np.isfinite(ref_corr[i, j]) and abs(ref_corr[i, j]) >= min_correlation]
    found = []
    se = math.sqrt(1 / (reference.shape[0] - 3) + 1 / (window.shape[0] - 3))
    for i, j in pairs:
        before, after = float(ref_corr[i, j]), float(win_corr[i, j])
        if not math.isfinite(after):
            after = 0.0
        z = (math.atanh(min(0.999999, max(-0.999999, before)))
             - math.atanh(min(0.999999, max(-0.999999, after)))) / se
        p_value = float(2 * stats.norm.sf(abs(z)))
        if p_value * len(pairs) >= alpha or abs(before - after) < min_change:
            continue
        for feature, partner in ((names[i], names[j]), (names[j], names[i])):
            found.append(Diagnosis(feature, "correlation",
                                   {"partner": partner, "reference_r": before, "window_r": after,
                                    "p_value": min(1.0, p_value * len(pairs))},
                                   f"{feature}: correlation with {partner} went from {before:.2f} to {after:.2f} "
                                   "(re-wired input?)"))
    return found

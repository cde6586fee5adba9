"""Every built-in per-feature measure, gathered from its family's module (``ecdf``, ``binned``, …)."""

from monitor.divergence.base import Measure, Score
from monitor.divergence.binned import (
    Hellinger,
    JensenShannon,
    JensenShannonDivergence,
    KullbackLeibler,
    KullbackLeiblerReverse,
    PopulationStabilityIndex,
    js_divergence,
)
from monitor.divergence.categorical import (
    ChiSquare,
    LInfinity,
    TotalVariation,
    UnseenShare,
)
from monitor.divergence.counts import (
    EPS,
    category_counts,
    proportions,
    window_bin_counts,
)
from monitor.divergence.ecdf import (
    AndersonDarling,
    CramerVonMises,
    Energy,
    KolmogorovSmirnov,
    Wasserstein,
    WassersteinRaw,
    cdf_distance,
    ks_asymptotic_p_value,
    ks_statistic,
)
from monitor.divergence.moments import WelchT

__all__ = [
    "EPS", "AndersonDarling", "ChiSquare", "CramerVonMises", "Energy", "Hellinger", "JensenShannon",
    "JensenShannonDivergence", "KolmogorovSmirnov", "KullbackLeibler", "KullbackLeiblerReverse", "LInfinity",
    "Measure", "PopulationStabilityIndex", "Score", "TotalVariation", "UnseenShare", "Wasserstein",
    "WassersteinRaw", "WelchT", "category_counts", "cdf_distance", "js_divergence", "ks_asymptotic_p_value",
    "ks_statistic", "proportions", "window_bin_counts",
]

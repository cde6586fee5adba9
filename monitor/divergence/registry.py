"""The registry of divergence measures: the built-ins plus those plugins add."""

from __future__ import annotations

from typing import Iterator, Mapping

from monitor.divergence.base import Measure
from monitor.divergence.binned import (
    Hellinger,
    JensenShannon,
    JensenShannonDivergence,
    KullbackLeibler,
    KullbackLeiblerReverse,
    PopulationStabilityIndex,
)
from monitor.divergence.categorical import (
    ChiSquare,
    LInfinity,
    TotalVariation,
    UnseenShare,
)
from monitor.divergence.classifier import ClassifierTest
from monitor.divergence.ecdf import (
    AndersonDarling,
    CramerVonMises,
    Energy,
    KolmogorovSmirnov,
    Wasserstein,
    WassersteinRaw,
)
from monitor.divergence.kernels import MMD, EnergyDistance, LinearMMD
from monitor.divergence.moments import WelchT
from monitor.divergence.multivariate import MultivariateMeasure

#: A per-feature or a multivariate measure.
AnyMeasure = Measure | MultivariateMeasure

#: The built-in measures by name: the first five are the original set, in their original order.
BUILTIN_MEASURES: dict[str, Measure] = {
    measure.name: measure
    for measure in (
        KolmogorovSmirnov(),
        PopulationStabilityIndex(),
        JensenShannon(),
        Wasserstein(),
        ChiSquare(),
        JensenShannonDivergence(),
        KullbackLeibler(),
        KullbackLeiblerReverse(),
        Hellinger(),
        WassersteinRaw(),
        AndersonDarling(),
        CramerVonMises(),
        Energy(),
        WelchT(),
        TotalVariation(),
        LInfinity(),
        UnseenShare(),
    )
}


#: The built-in multivariate measures by name.
MULTIVARIATE_MEASURES: dict[str, MultivariateMeasure] = {
    measure.name: measure for measure in (MMD(), LinearMMD(), ClassifierTest(), EnergyDistance())
}

#: Every built-in measure: per feature, then multivariate.
BUILTIN: dict[str, AnyMeasure] = {**BUILTIN_MEASURES, **MULTIVARIATE_MEASURES}


class MeasureRegistry:
    """The measures a daemon can use, by name: the built-ins, then plugin extras."""

    def __init__(self, extra: Mapping[str, AnyMeasure] | None = None) -> None:
        self._measures: dict[str, AnyMeasure] = dict(BUILTIN)
        for name, measure in dict(extra or {}).items():
            if name in BUILTIN:
                raise ValueError(f"plugin measure {name!r} has the name of a built-in measure")
            if not isinstance(measure, (Measure, MultivariateMeasure)):
                raise TypeError(
                    f"plugin measure {name!r} is not a Measure or MultivariateMeasure instance: "
                    f"{type(measure).__name__}"
                )
            self._measures[name] = measure

    def get(self, name: str) -> AnyMeasure:
        """The measure called ``name``; KeyError listing the known names if there is none."""
        try:
            return self._measures[name]
        except KeyError:
            known = ", ".join(self._measures)
            raise KeyError(f"unknown measure {name!r}; known measures: {known}") from None

    def names(self) -> list[str]:
        """The names of all measures, built-ins first."""
        return list(self._measures)

    def __iter__(self) -> Iterator[str]:
        return iter(self._measures)

    def __contains__(self, name: object) -> bool:
        return name in self._measures

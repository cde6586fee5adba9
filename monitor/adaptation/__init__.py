"""Adaptation: when drift is confirmed, adapters bring the model to the target domain and a gate
decides whether what they produced beats doing nothing."""

from monitor.adaptation.api import Challenger, Decision, adapt
from monitor.adaptation.contract import (
    AdaptationCancelled,
    AdaptationContext,
    AdaptationResult,
    Adapter,
    AdapterError,
    Domain,
    DriftInfo,
)
from monitor.adaptation.model import (
    AdaptedModel,
    AffineMap,
    Model,
    ModelLoadError,
    SklearnModel,
    TorchModel,
)

__all__ = [
    "Challenger", "Decision", "adapt",
    "AdaptationCancelled", "AdaptationContext", "AdaptationResult", "Adapter", "AdapterError", "AdaptedModel",
    "AffineMap", "Domain", "DriftInfo", "Model", "ModelLoadError", "SklearnModel", "TorchModel",
]

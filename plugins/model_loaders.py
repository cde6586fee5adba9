"""Built-in model loaders: scikit-learn estimators (pickle/joblib from trusted places) and torch modules (weights only)."""

from __future__ import annotations

from typing import Any, Mapping

from monitor.adaptation.model import load_sklearn, load_torch
from monitor.plugin import hookimpl


@hookimpl
def driftd_model_loaders() -> Mapping[str, Any]:
    """The sklearn and torch loaders."""
    return {"sklearn": load_sklearn, "torch": load_torch}

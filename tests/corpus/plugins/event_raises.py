"""An event hook that raises on every evaluated window and every drift event."""
from monitor.hookspecs import hookimpl


@hookimpl
def driftd_window_evaluated(monitor, window):  # noqa: ANN001, ANN201
    raise RuntimeError("corpus: the hook failed")


@hookimpl
def driftd_drift_detected(monitor, event):  # noqa: ANN001, ANN201
    raise RuntimeError("corpus: the drift hook failed")

"""The hooks driftd plugins implement: one hook per noun, as in pytest and datasette.

A plugin is a plain module (or object) with ``@hookimpl`` functions, registered through the
``driftd`` entry-point group. Every hook is optional; implement only the ones you need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import pluggy

if TYPE_CHECKING:
    from monitor.connector import Connector

PROJECT = "driftd"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def driftd_connectors() -> Mapping[str, type[Connector]]:
    """Return connector classes by type name, e.g. ``{"files": FilesConnector}``.

    Called once when the plugin manager is built. The type name is what a monitor's
    ``source.type`` names; each class is built from the monitor's ``source.options`` mapping.
    """


@hookspec
def driftd_adapters() -> Mapping[str, type]:
    """Return adaptation classes by type name, e.g. ``{"importance_weighting": Reweighter}``.

    Called once when the plugin manager is built. Each class is built from its options and
    has ``adapt(ctx) -> AdaptationResult``.
    """


@hookspec
def driftd_model_loaders() -> Mapping[str, Any]:
    """Return model loaders by name, e.g. ``{"sklearn": load_sklearn}``.

    Called once when the plugin manager is built. A loader is ``load(path, options) -> Model``
    (``monitor.adaptation.Model``); a monitor's ``model.loader`` names it. Loaders must not
    unpickle files from untrusted places (torch: ``torch.load(..., weights_only=True)``).
    """


@hookspec
def driftd_divergences() -> Mapping[str, Any]:
    """Return extra divergence measures by name: ``monitor.divergence.Measure`` (per feature) or
    ``MultivariateMeasure`` (all numeric features jointly) instances.

    Called once when the plugin manager is built. The measures join the built-in registry and
    can be named in a monitor's ``measures`` like any built-in one.
    """


@hookspec
def driftd_notifiers() -> Mapping[str, type]:
    """Return notifier classes by type name; each has ``notify(event)``.

    Called once when the plugin manager is built.
    """


@hookspec
def driftd_startup(config: Any) -> None:
    """Called once after the daemon loaded its config and storage, before the first tick."""


@hookspec
def driftd_window_evaluated(monitor: str, window: Mapping[str, Any]) -> None:
    """Called after a window's results were committed.

    ``window`` holds ``seq``, ``rows``, ``state``, ``drift_share``, ``drifted_features``,
    ``missing_features``, ``failed_measures`` (measure → why it failed) and ``results`` (a list of
    per-feature, per-measure mappings). The return value is ignored.
    """


@hookspec
def driftd_drift_detected(monitor: str, event: Mapping[str, Any]) -> None:
    """Called after a drift event was committed (the monitor entered the drift state).

    ``event`` holds ``id``, ``window_seq``, ``drift_share`` and ``features``. The return
    value is ignored.
    """


@hookspec
def driftd_adaptation_finished(monitor: str, adaptation: Mapping[str, Any]) -> None:
    """Called after an adapter's run reached a final state.

    ``adaptation`` holds ``id``, ``event_id``, ``adapter``, ``state`` (succeeded, failed,
    rejected or promoted), ``reason``, ``metrics``, ``artifact`` and ``model_version``. The
    return value is ignored.
    """


@hookspec
def driftd_shutdown() -> None:
    """Called once when the daemon stops, after the last tick finished."""

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
    """Return notifier classes by type name, e.g. ``{"pager": PagerNotifier}``.

    Called once when the plugin manager is built. Each class (``monitor.plugin.Notifier``) is
    built from the options of a top-level ``notifiers:`` entry of its type and has
    ``notify(event)``; driftd calls it from the outbox after the commit, at least once (it is
    called again when it raises). ``event`` holds ``id`` (stable across retries: drop duplicates
    by it), ``type``, ``monitor``, ``created_at``, ``attempt`` and ``data``.
    """


@hookspec
def driftd_config_model() -> type:
    """Return the pydantic model of this plugin's own section of the configuration file.

    Called when a configuration with a section for this plugin is loaded (and validated). The
    section is ``plugins: {NAME: {...}}`` at the top level, NAME being the plugin's name as
    ``driftd plugins`` shows it (the entry-point name). driftd validates the section with the model
    (``${VAR}`` references already replaced; a text value is never quoted in an error, as it may
    be a secret) and hands the result to ``driftd_configure``. A section for a plugin without this
    hook, or one the model refuses, stops start-up (and a reload) with one line naming the plugin.
    Give the model ``model_config = ConfigDict(extra="forbid")`` so that a misspelt key is refused.
    """


@hookspec
def driftd_configure(settings: Any) -> None:
    """Called with this plugin's validated section (an instance of its ``driftd_config_model``).

    Called only for a plugin that has a section: when the daemon (or ``driftd check``) is built,
    before the first tick, and again after a reload that changed the ``plugins:`` section. Raise to refuse the
    settings: start-up stops with one line naming the plugin (a reload is refused).
    """


@hookspec
def driftd_startup(config: Any) -> None:
    """Called once after the daemon loaded its config and storage, before the first tick."""


@hookspec
def driftd_window_evaluated(monitor: str, window: Mapping[str, Any]) -> None:
    """Called after a window's results were committed, from the outbox: at least once.

    ``window`` holds ``seq``, ``rows``, ``state``, ``drift_share``, ``drifted_features``,
    ``missing_features``, ``failed_measures`` (measure → why it failed), ``results`` (a list of
    per-feature, per-measure mappings), ``diagnoses`` (what kind of change each feature shows:
    ``feature``, ``kind``, ``figures``, ``sentence``), ``segments`` (with ``features.segment_by``:
    each segment's ``segment``, ``rows``, ``drifted``, ``drifted_features``, ``missing_features``,
    ``in_reference``) and ``event_uid`` (stable across retries). An implementation
    that raises is called again later (capped backoff); after a crash the same event may come
    twice: drop duplicates by ``event_uid``. The return value is ignored.
    """


@hookspec
def driftd_drift_detected(monitor: str, event: Mapping[str, Any]) -> None:
    """Called after a drift event was committed (the monitor entered the drift state), from the
    outbox: at least once.

    ``event`` holds ``id`` (the drift event's), ``window_seq``, ``drift_share``, ``features``,
    ``diagnoses`` (as the window's), ``drifted_segments`` and ``event_uid`` (stable across retries: drop duplicates by it). The return value is ignored.
    """


@hookspec
def driftd_adaptation_finished(monitor: str, adaptation: Mapping[str, Any]) -> None:
    """Called after an adapter's run reached a final state, from the outbox: at least once.

    ``adaptation`` holds ``id``, ``event_id`` (the drift event's), ``adapter``, ``state``
    (succeeded, failed, rejected or promoted), ``reason``, ``metrics``, ``artifact``,
    ``model_version`` and ``event_uid`` (stable across retries: drop duplicates by it). The
    return value is ignored.
    """


@hookspec
def driftd_shutdown() -> None:
    """Called once when the daemon stops, after the last tick finished."""

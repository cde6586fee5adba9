"""The HTTP API under ``/api/v1``: read the history, trigger a check, re-baseline; with its OpenAPI document."""

from __future__ import annotations

import hmac
import logging
import os
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor import __version__
from monitor.config import MonitorConfig
from monitor.daemon import Daemon
from monitor.daemon.engine import MonitorError
from monitor.domain.records import ResultRecord
from monitor.http.openapi import openapi
from monitor.http.params import (
    API_PREFIX,
    CURSOR,
    FEATURE,
    LIMIT,
    MEASURE,
    NAME,
    SINCE,
    UNTIL,
    ApiError,
    Endpoint,
    Param,
    as_json,
)
from monitor.store import (
    AdaptationRow,
    EventRow,
    Page,
    SeriesPoint,
    StoredReference,
    StoreError,
    WindowRow,
)
from monitor.redact import safe_line
from monitor.store.adaptations import STATES, AdaptationRecords

log = logging.getLogger("driftd.api")

WINDOW_STATES = ("ok", "warning", "drift")
ADAPTATION_STATES = STATES


# ---- serialisation -----------------------------------------------------------------------------

def _window(row: WindowRow) -> dict[str, Any]:
    return vars(row).copy()


def _result(record: ResultRecord) -> dict[str, Any]:
    return vars(record).copy()


def _point(point: SeriesPoint) -> dict[str, Any]:
    return {"seq": point.seq, "ended_at": point.ended_at, "evaluated_at": point.evaluated_at, **_result(point.result)}


def _event(row: EventRow) -> dict[str, Any]:
    return vars(row).copy()


def _reference(ref: StoredReference) -> dict[str, Any]:
    return {"version": ref.version, "rows": ref.rows, "features": ref.features, "origin": ref.origin,
            "active": ref.active, "created_at": ref.created_at, "calibrated": ref.calibration is not None}


def _adaptation(row: AdaptationRow) -> dict[str, Any]:
    return vars(row).copy()


def _page(page: Page[Any], render: Callable[[Any], dict[str, Any]], cursor: Callable[[Any], str]) -> dict[str, Any]:
    return {"items": [render(item) for item in page.items],
            "next": cursor(page.items[-1]) if page.more and page.items else None}


def config_summary(config: MonitorConfig) -> dict[str, Any]:
    """What a monitor watches and how; never the connector's options (they may hold secrets)."""
    return {
        "source": config.source.type,
        "features": {"numeric": list(config.features.numeric), "categorical": list(config.features.categorical)},
        "window": {"rows": config.window.rows, "span": config.window.span, "timestamp": config.window.timestamp},
        "measures": [{"name": name, "threshold": setting.threshold} for name, setting in config.measures.items()],
        "schedule": {"interval": config.schedule.interval, "cron": config.schedule.cron},
        "drift": {"share": config.drift.share, "consecutive": config.drift.consecutive,
                  "correction": config.drift.correction},
    }


# ---- the handlers (run in a worker thread; they may block on SQL) ------------------------------

class Api:
    """The daemon as the API sees it."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.health = ApiHealth()

    def monitor(self, name: str) -> MonitorConfig:
        """The configured monitor named ``name``; ApiError(404) otherwise."""
        for config in self.daemon.config.monitors:
            if config.name == name:
                return config
        known = ", ".join(m.name for m in self.daemon.config.monitors) or "none"
        raise ApiError(404, f"no monitor named {name!r} (configured: {known})")

    def describe(self, config: MonitorConfig) -> dict[str, Any]:
        """A monitor's state, latest window, reference version, source health and config summary."""
        overview = self.daemon.store.overview(config.name)
        snapshot = dict(self.daemon.metrics.snapshots()).get(config.name)
        runner = self.daemon.runners.get(config.name)
        last = overview.last_window
        return {
            "name": config.name,
            "enabled": config.enabled,
            "running": runner is not None,
            "error": self.daemon.broken.get(config.name) or (runner.problem if runner is not None else None),
            "state": last.state if last else None,
            "drift_share": last.drift_share if last else None,
            "last_window": {"seq": last.seq, "ended_at": last.ended_at, "evaluated_at": last.evaluated_at}
            if last else None,
            "reference_version": overview.reference_version,
            "source_up": snapshot.source_up if snapshot else None,
            "backlog": {"rows": snapshot.backlog_rows if snapshot else None,
                        "seconds": snapshot.backlog_seconds if snapshot else None},
            "windows": overview.windows,
            "events": overview.events,
            "replica": self.owner(config.name),
            "config": config_summary(config),
        }

    def owner(self, monitor: str) -> str | None:
        """The replica evaluating the monitor now: this process on SQLite, the lease holder on PostgreSQL."""
        if self.daemon.store.is_sqlite:
            return self.daemon.replica if monitor in self.daemon.runners else None
        return self.daemon.store.lease_owners().get(monitor)

    def authorize(self, request: Request) -> None:
        """Check the bearer token; 403 when no token is configured, 401 when it is missing or wrong."""
        variable = self.daemon.config.server.token_env
        expected = os.environ.get(variable, "")
        if not expected:
            raise ApiError(403, f"write API disabled: set {variable}")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            raise ApiError(401, "a valid bearer token is required (Authorization: Bearer <token>)",
                           headers={"WWW-Authenticate": 'Bearer realm="driftd"'})


def _check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise ApiError(400, "until must be later than since", "until")


def list_monitors(api: Api) -> dict[str, Any]:
    """Every configured monitor with its state."""
    return {"monitors": [api.describe(config) for config in api.daemon.config.monitors]}


def get_monitor(api: Api, name: str) -> dict[str, Any]:
    """One monitor with its state."""
    return api.describe(api.monitor(name))


def list_windows(api: Api, name: str, since: datetime | None, until: datetime | None, state: str | None,
                 limit: int, cursor: int | None) -> dict[str, Any]:
    """A monitor's windows, newest first, by time range and state."""
    api.monitor(name)
    _check_range(since, until)
    page = api.daemon.store.window_page(name, limit, cursor, since, until, state)
    return _page(page, _window, lambda row: str(row.seq))


def get_window(api: Api, name: str, seq: int) -> dict[str, Any]:
    """One window, with its shift diagnoses (what kind of change each feature shows)."""
    return window_results(api, name, seq, None, None)["window"]


def window_results(api: Api, name: str, seq: int, feature: str | None, measure: str | None) -> dict[str, Any]:
    """One window and its results, optionally of one feature and/or measure."""
    api.monitor(name)
    found = api.daemon.store.window_results(name, seq, feature, measure)
    if found is None:
        raise ApiError(404, f"monitor {name!r} has no window {seq}")
    window, results = found
    return {"window": _window(window), "results": [_result(record) for record in results]}


def list_results(api: Api, name: str, feature: str | None, measure: str | None, since: datetime | None,
                 until: datetime | None, limit: int, cursor: tuple[int, int] | None) -> dict[str, Any]:
    """Results over windows (a time series when one feature and measure are given), newest first."""
    api.monitor(name)
    _check_range(since, until)
    page = api.daemon.store.result_page(name, limit, cursor, feature, measure, since, until)
    return _page(page, _point, lambda point: f"{point.seq}-{point.id}")


def list_events(api: Api, name: str, since: datetime | None, until: datetime | None, limit: int,
                cursor: int | None) -> dict[str, Any]:
    """A monitor's drift events, newest first."""
    api.monitor(name)
    _check_range(since, until)
    return _page(api.daemon.store.event_page(name, limit, cursor, since, until), _event, lambda row: str(row.id))


def _references(api: Api, name: str) -> list[StoredReference]:
    try:
        return api.daemon.store.references(name)
    except StoreError:
        return []  # configured, never run: no history yet


def list_references(api: Api, name: str) -> dict[str, Any]:
    """Every reference version of a monitor, oldest first."""
    api.monitor(name)
    return {"items": [_reference(ref) for ref in _references(api, name)]}


def list_adaptations(api: Api, monitor: str | None, state: str | None, limit: int,
                     cursor: int | None) -> dict[str, Any]:
    """Adaptation runs, newest first, optionally of one monitor and state."""
    page = api.daemon.store.adaptation_page(limit, cursor, monitor, state)
    return _page(page, _adaptation, lambda row: str(row.id))


def list_models(api: Api, name: str) -> dict[str, Any]:
    """The monitor's model versions, oldest first; one is active."""
    api.monitor(name)
    try:
        versions = AdaptationRecords(api.daemon.store).model_versions(name)
    except StoreError:  # no history yet
        versions = []
    return {"items": [vars(version).copy() for version in versions]}


def rollback_model(api: Api, name: str, to: int | None) -> dict[str, Any]:
    """Make an earlier model version active again (default: the one before the active one)."""
    config = api.monitor(name)
    try:
        left, now = api.daemon.adaptation.models.rollback(name, config.model, to)
    except StoreError as error:
        raise ApiError(409, str(error)) from None
    api.daemon.metrics.model_version.labels(name).set(now.version)
    log.info("monitor %s: model rolled back from version %d to %d through the API", name, left.version, now.version)
    return vars(now).copy()


def force_adaptation(api: Api, name: str) -> dict[str, Any]:
    """Run the monitor's adapters on its latest rows without a drift event (what ``adaptations run --force`` asks)."""
    config = api.monitor(name)
    if config.adaptation is None:
        raise ApiError(409, f"monitor {name!r} has no adaptation section in the configuration")
    records = AdaptationRecords(api.daemon.store)
    try:
        evaluator = records.request_forced(name)
    except StoreError as error:
        raise ApiError(409, str(error)) from None
    taken, message = evaluator.takes_request(name, config.schedule.interval, datetime.now(timezone.utc))
    log.info("monitor %s: forced adaptation requested through the API (%s)", name,
             "taken at the next tick" if taken else "no daemon evaluates it now; the request is kept")
    return {"monitor": name, "requested_at": records.forced_request(name), "taken": taken,
            "replica": evaluator.lease_owner, "last_tick": evaluator.last_tick, "message": message}


def check_now(api: Api, name: str) -> dict[str, Any]:
    """Run one tick of the monitor now (after any scheduled tick in flight) and report it."""
    api.monitor(name)
    if name not in api.daemon.runners:
        reason = api.daemon.broken.get(name, "disabled in the configuration")
        raise ApiError(409, f"monitor {name!r} is not running: {reason}")
    try:
        report = api.daemon.trigger(name, retry_now=True)  # an operator asked: do not wait out a backoff
    except KeyError:
        raise ApiError(409, f"monitor {name!r} is not running") from None
    except MonitorError as error:
        raise ApiError(503, str(error)) from None
    log.info("monitor %s: check triggered through the API (%d window(s))", name, len(report.windows))
    return {
        "monitor": name, "rows_fetched": report.rows_fetched, "state": report.state,
        "windows": [{"seq": w.seq, "rows": w.rows, "state": w.state, "drift_share": w.drift_share,
                     "drifted_features": list(w.drifted_features), "starts_event": w.starts_event}
                    for w in report.windows],
    }


def activate_reference(api: Api, name: str, version: int) -> dict[str, Any]:
    """Re-baseline: make a stored reference version the active one (used from the next tick)."""
    api.monitor(name)
    stored = [ref.version for ref in _references(api, name)]
    if version not in stored:
        raise ApiError(404, f"monitor {name!r} has no reference version {version} "
                            f"(stored: {', '.join(map(str, stored)) or 'none'})")
    reference = api.daemon.store.activate_reference(name, version)
    log.info("monitor %s: reference version %d activated through the API", name, version)
    return _reference(reference)


def acknowledge_event(api: Api, name: str, event_id: int, by: str | None) -> dict[str, Any]:
    """Acknowledge a drift event: someone has seen it (``by`` names them)."""
    api.monitor(name)
    try:
        event = api.daemon.store.acknowledge_event(name, event_id, by)
    except StoreError as error:
        raise ApiError(404, str(error)) from None
    log.info("monitor %s: drift event %d acknowledged through the API", name, event_id)
    return _event(event)


def api_index(api: Api) -> dict[str, Any]:
    """This index: every endpoint of the API with its one-line summary."""
    return {
        "name": "driftd",
        "version": __version__,
        "openapi": f"{API_PREFIX}/openapi.json",
        "endpoints": [{"method": endpoint.method, "path": f"{API_PREFIX}{endpoint.path}",
                       "summary": (endpoint.handler.__doc__ or "").strip().splitlines()[0]}
                      for endpoint in ENDPOINTS],
    }


def openapi_document(api: Api) -> dict[str, Any]:
    """This OpenAPI 3 document."""
    return openapi(ENDPOINTS)


# ---- routes and the OpenAPI document -----------------------------------------------------------

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/", api_index, "Index"),
    Endpoint("GET", "/monitors", list_monitors, "MonitorList"),
    Endpoint("GET", "/monitors/{name}", get_monitor, "Monitor", (NAME,)),
    Endpoint("GET", "/monitors/{name}/windows", list_windows, "WindowPage",
             (NAME, SINCE, UNTIL, Param("state", "query", "enum", "only windows in this state", choices=WINDOW_STATES),
              LIMIT, CURSOR)),
    Endpoint("GET", "/monitors/{name}/windows/{seq}", get_window, "Window",
             (NAME, Param("seq", "path", "integer", "the window's sequence number", minimum=1))),
    Endpoint("GET", "/monitors/{name}/windows/{seq}/results", window_results, "WindowResults",
             (NAME, Param("seq", "path", "integer", "the window's sequence number", minimum=1), FEATURE, MEASURE)),
    Endpoint("GET", "/monitors/{name}/results", list_results, "SeriesPage",
             (NAME, FEATURE, MEASURE, SINCE, UNTIL, LIMIT,
              Param("cursor", "query", "pair_cursor", "the `next` value of the previous page"))),
    Endpoint("GET", "/monitors/{name}/events", list_events, "EventPage", (NAME, SINCE, UNTIL, LIMIT, CURSOR)),
    Endpoint("GET", "/monitors/{name}/references", list_references, "ReferenceList", (NAME,)),
    Endpoint("GET", "/adaptations", list_adaptations, "AdaptationPage",
             (Param("monitor", "query", "string", "only runs of this monitor"),
              Param("state", "query", "enum", "only runs in this state", choices=ADAPTATION_STATES), LIMIT, CURSOR)),
    Endpoint("GET", "/monitors/{name}/models", list_models, "ModelVersionList", (NAME,)),
    Endpoint("POST", "/monitors/{name}/models/rollback", rollback_model, "ModelVersion",
             (NAME, Param("to", "query", "integer", "the version to go back to (default: the one before)", minimum=1)),
             write=True, errors={409: "there is no earlier version to roll back to"}),
    Endpoint("POST", "/monitors/{name}/adaptations/force", force_adaptation, "ForcedAdaptation", (NAME,), write=True,
             errors={409: "the monitor has no adaptation section"}),
    Endpoint("POST", "/monitors/{name}/check", check_now, "TickReport", (NAME,), write=True,
             errors={409: "the monitor is configured but not running",
                     503: "the tick failed (source down or evaluation error)"}),
    Endpoint("POST", "/monitors/{name}/references/{version}/activate", activate_reference, "Reference",
             (NAME, Param("version", "path", "integer", "the reference version to activate", minimum=1)),
             write=True),
    Endpoint("POST", "/monitors/{name}/events/{event_id}/acknowledge", acknowledge_event, "Event",
             (NAME, Param("event_id", "path", "integer", "the drift event's id", minimum=1),
              Param("by", "query", "string", "who acknowledges it")), write=True),
    Endpoint("GET", "/openapi.json", openapi_document, "OpenAPI"),
)


def _arguments(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    """Every declared parameter parsed; unknown query parameters are refused."""
    declared = {param.name for param in endpoint.params if param.where == "query"}
    for name in request.query_params:
        if name not in declared:
            allowed = ", ".join(sorted(declared)) or "none"
            raise ApiError(400, f"unknown query parameter {name!r} (allowed: {allowed})", name)
    return {param.name: param.parse(request.path_params.get(param.name) if param.where == "path"
                                    else request.query_params.get(param.name))
            for param in endpoint.params}


def _route(api: Api, endpoint: Endpoint) -> Route:
    async def handle(request: Request) -> Response:
        try:
            if endpoint.write:
                api.authorize(request)
            arguments = _arguments(endpoint, request)
            body = await run_in_threadpool(endpoint.handler, api, **arguments)
        except ApiError as error:
            return error.response()
        except SQLAlchemyError as error:
            return api.health.database_failed(error)
        except Exception as error:  # noqa: BLE001 - a bug: a JSON answer, one log line per kind of failure
            return api.health.unexpected(endpoint, error)
        api.health.database_answered()
        return JSONResponse(as_json(body))

    return Route(endpoint.path, handle, methods=[endpoint.method], name=endpoint.handler.__name__)


class ApiHealth:
    """How the API answers when the database or the code fails: 503 or 500 as JSON, logged once per change."""

    def __init__(self) -> None:
        self.database_problem: str | None = None
        self._logged: set[str] = set()

    def database_failed(self, error: Exception) -> Response:
        """503 with the reason; the first failure (and each new reason) is logged, not every request."""
        cause = getattr(error, "orig", None) or error
        problem = f"database unavailable: {type(cause).__name__}: {safe_line(str(cause), 200)}"
        if problem != self.database_problem:
            log.error("API: %s (answering 503 until it is back)", problem)
            self.database_problem = problem
        return JSONResponse({"error": problem}, status_code=503, headers={"Retry-After": "5"})

    def database_answered(self) -> None:
        """After a request the database answered: log the recovery once."""
        if self.database_problem is not None:
            log.info("API: the database answers again")
            self.database_problem = None

    def unexpected(self, endpoint: Endpoint, error: Exception) -> Response:
        """500 naming the failure; its traceback is logged once per endpoint and kind of error."""
        key = f"{endpoint.method} {endpoint.path}: {type(error).__name__}"
        if key not in self._logged and len(self._logged) < 100:
            self._logged.add(key)
            log.error("API: %s failed", key, exc_info=error)
        return JSONResponse({"error": f"internal error: {type(error).__name__}: {safe_line(str(error), 200)}"},
                            status_code=500)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)


def build_api(daemon: Daemon) -> Starlette:
    """The API application, to be mounted at ``/api/v1``; it reads the daemon's store, runners and config."""
    api = Api(daemon)
    return Starlette(routes=[_route(api, endpoint) for endpoint in ENDPOINTS],
                     exception_handlers={HTTPException: _http_error})

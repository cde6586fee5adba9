"""The HTTP API under ``/api/v1``: read the history, trigger a check, re-baseline; with its OpenAPI document."""

from __future__ import annotations

import hmac
import logging
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Literal

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from monitor import __version__
from monitor.adaptation.records import STATES, AdaptationRecords
from monitor.config import MonitorConfig
from monitor.engine import MonitorError
from monitor.server import API_PREFIX
from monitor.store import (
    AdaptationRow,
    EventRow,
    Page,
    ResultRecord,
    SeriesPoint,
    StoredReference,
    StoreError,
    WindowRow,
)

if TYPE_CHECKING:
    from monitor.daemon import Daemon

log = logging.getLogger("driftd.api")

WINDOW_STATES = ("ok", "warning", "drift")
ADAPTATION_STATES = STATES
MAX_LIMIT = 500


class ApiError(Exception):
    """A request the API answers with an error status and a JSON body."""

    def __init__(self, status: int, message: str, parameter: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.parameter, self.headers = status, message, parameter, headers

    def response(self) -> JSONResponse:
        """The JSON error response: ``{"error": ..., "parameter": ...}``."""
        body = {"error": self.message, **({"parameter": self.parameter} if self.parameter else {})}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


# ---- parameters --------------------------------------------------------------------------------

Kind = Literal["string", "integer", "datetime", "enum", "cursor", "pair_cursor"]


@dataclass(frozen=True)
class Param:
    """A path or query parameter: how it is parsed, validated and documented."""

    name: str
    where: Literal["path", "query"]
    kind: Kind
    description: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, raw: str | None) -> Any:
        """The parameter's value from its text; ApiError(400) when malformed."""
        if raw is None:
            return self.default
        if self.kind == "integer":
            if not re.fullmatch(r"-?\d{1,18}", raw):
                raise ApiError(400, f"{self.name} must be an integer", self.name)
            value = int(raw)
            too_small = self.minimum is not None and value < self.minimum
            if too_small or (self.maximum is not None and value > self.maximum):
                raise ApiError(400, f"{self.name} must be between {self.minimum} and {self.maximum}", self.name)
            return value
        if self.kind == "datetime":
            return parse_time(raw, self.name)
        if self.kind == "enum":
            if raw not in self.choices:
                raise ApiError(400, f"{self.name} must be one of {', '.join(self.choices)}", self.name)
            return raw
        if self.kind == "cursor":
            if not re.fullmatch(r"\d{1,18}", raw):
                raise ApiError(400, "cursor must be the `next` value of the previous page", self.name)
            return int(raw)
        if self.kind == "pair_cursor":
            if not re.fullmatch(r"\d{1,18}-\d{1,18}", raw):
                raise ApiError(400, "cursor must be the `next` value of the previous page", self.name)
            seq, result_id = raw.split("-")
            return int(seq), int(result_id)
        if not raw or len(raw) > 200:
            raise ApiError(400, f"{self.name} must be 1 to 200 characters", self.name)
        return raw

    def schema(self) -> dict[str, Any]:
        """The parameter's OpenAPI schema."""
        if self.kind == "integer":
            bounds = {"minimum": self.minimum, "maximum": self.maximum, "default": self.default}
            return {"type": "integer", **{key: value for key, value in bounds.items() if value is not None}}
        if self.kind == "datetime":
            return {"type": "string", "format": "date-time"}
        if self.kind == "enum":
            return {"type": "string", "enum": list(self.choices)}
        return {"type": "string"}


def parse_time(raw: str, parameter: str) -> datetime:
    """An ISO 8601 time as aware UTC; a time without a zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{parameter} must be an ISO 8601 time such as 2026-01-31T12:00:00Z "
                            "(percent-encode a '+' offset)", parameter) from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


NAME = Param("name", "path", "string", "the monitor's configured name")
SINCE = Param("since", "query", "datetime", "only items at or after this time (ISO 8601, UTC)")
UNTIL = Param("until", "query", "datetime", "only items before this time (ISO 8601, UTC)")
LIMIT = Param("limit", "query", "integer", "items per page", default=50, minimum=1, maximum=MAX_LIMIT)
CURSOR = Param("cursor", "query", "cursor", "the `next` value of the previous page")
FEATURE = Param("feature", "query", "string", "only this feature (`*` for multivariate measures)")
MEASURE = Param("measure", "query", "string", "only this measure, e.g. ks")


# ---- serialisation -----------------------------------------------------------------------------

def _json(value: Any) -> Any:
    """Times as ISO 8601 UTC, non-finite numbers as null, recursively."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    return value


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
        last = overview.last_window
        return {
            "name": config.name,
            "enabled": config.enabled,
            "running": config.name in self.daemon.runners,
            "error": self.daemon.broken.get(config.name),
            "state": last.state if last else None,
            "drift_share": last.drift_share if last else None,
            "last_window": {"seq": last.seq, "ended_at": last.ended_at, "evaluated_at": last.evaluated_at}
            if last else None,
            "reference_version": overview.reference_version,
            "source_up": snapshot.source_up if snapshot else None,
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


def openapi_document(api: Api) -> dict[str, Any]:
    """This OpenAPI 3 document."""
    return openapi()


# ---- routes and the OpenAPI document -----------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """One operation: its route, parameters, documented responses and handler (whose docstring is its summary)."""

    method: Literal["GET", "POST"]
    path: str
    handler: Callable[..., dict[str, Any]]
    response: str
    params: tuple[Param, ...] = ()
    write: bool = False
    errors: dict[int, str] = field(default_factory=dict)


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/monitors", list_monitors, "MonitorList"),
    Endpoint("GET", "/monitors/{name}", get_monitor, "Monitor", (NAME,)),
    Endpoint("GET", "/monitors/{name}/windows", list_windows, "WindowPage",
             (NAME, SINCE, UNTIL, Param("state", "query", "enum", "only windows in this state", choices=WINDOW_STATES),
              LIMIT, CURSOR)),
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
        return JSONResponse(_json(body))

    return Route(endpoint.path, handle, methods=[endpoint.method], name=endpoint.handler.__name__)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return JSONResponse({"error": error.detail}, status_code=error.status_code, headers=error.headers)


def build_api(daemon: Daemon) -> Starlette:
    """The API application, to be mounted at ``/api/v1``; it reads the daemon's store, runners and config."""
    api = Api(daemon)
    return Starlette(routes=[_route(api, endpoint) for endpoint in ENDPOINTS],
                     exception_handlers={HTTPException: _http_error})


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def _page_of(name: str) -> dict[str, Any]:
    return _object(items=_array(_ref(name)), next=_nullable({"type": "string"}))


_S, _I, _N, _B = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}
_T = {"type": "string", "format": "date-time"}
_STRINGS = _array(_S)
_RESULT = dict(feature=_S, measure=_S, value=_nullable(_N), p_value=_nullable(_N), p_value_adjusted=_nullable(_N),
               threshold=_nullable(_N), drifted=_B)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {**_object(error=_S), "properties": {"error": _S, "parameter": _S}},
    "Monitor": _object(
        name=_S, enabled=_B, running=_B, error=_nullable(_S), state=_nullable(_S),
        drift_share=_nullable(_N), last_window=_nullable(_object(seq=_I, ended_at=_nullable(_T), evaluated_at=_T)),
        reference_version=_nullable(_I), source_up=_nullable(_B), windows=_I, events=_I, replica=_nullable(_S),
        config=_object(source=_S, features=_object(numeric=_STRINGS, categorical=_STRINGS),
                       window=_object(rows=_nullable(_I), span=_nullable(_N), timestamp=_nullable(_S)),
                       measures=_array(_object(name=_S, threshold=_nullable(_N))),
                       schedule=_object(interval=_nullable(_N), cron=_nullable(_S)),
                       drift=_object(share=_N, consecutive=_I, correction=_S))),
    "MonitorList": _object(monitors=_array(_ref("Monitor"))),
    "Window": _object(seq=_I, reference_version=_I, rows=_I, started_at=_nullable(_T), ended_at=_nullable(_T),
                      evaluated_at=_T, state=_S, drift_share=_nullable(_N), drifted_features=_STRINGS,
                      missing_features=_STRINGS, statistic=_nullable(_N)),
    "WindowPage": _page_of("Window"),
    "Result": _object(**_RESULT),
    "WindowResults": _object(window=_ref("Window"), results=_array(_ref("Result"))),
    "SeriesPoint": _object(seq=_I, ended_at=_nullable(_T), evaluated_at=_T, **_RESULT),
    "SeriesPage": _page_of("SeriesPoint"),
    "Event": _object(id=_I, window_seq=_I, created_at=_T, drift_share=_nullable(_N), features=_STRINGS,
                     acknowledged_at=_nullable(_T), acknowledged_by=_nullable(_S)),
    "EventPage": _page_of("Event"),
    "Reference": _object(version=_I, rows=_I, features={"type": "object", "additionalProperties": _S}, origin=_S,
                         active=_B, created_at=_T, calibrated=_B),
    "ReferenceList": _object(items=_array(_ref("Reference"))),
    "Adaptation": _object(id=_I, monitor=_S, event_id=_I, adapter=_S,
                          state={"type": "string", "enum": list(ADAPTATION_STATES)}, created_at=_T, updated_at=_T,
                          metrics=_nullable({"type": "object"}), artifact=_nullable(_S), error=_nullable(_S),
                          adapter_type=_nullable(_S), started_at=_nullable(_T), finished_at=_nullable(_T),
                          reason=_nullable(_S), model_version=_nullable(_I), replica=_nullable(_S)),
    "AdaptationPage": _page_of("Adaptation"),
    "ModelVersion": _object(version=_I, path=_S, active=_B, created_at=_T, adaptation_id=_nullable(_I),
                            note=_nullable(_S)),
    "ModelVersionList": _object(items=_array(_ref("ModelVersion"))),
    "TickReport": _object(monitor=_S, rows_fetched=_I, state=_S, windows=_array(_object(
        seq=_I, rows=_I, state=_S, drift_share=_nullable(_N), drifted_features=_STRINGS, starts_event=_B))),
    "OpenAPI": {"type": "object", "required": ["openapi", "info", "paths"]},
}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ref("Error")}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": {"application/json": {"schema": _ref(endpoint.response)}}},
        "400": {"description": "a malformed or unknown query parameter", **error},
    }
    if any(param.name == "name" for param in endpoint.params):
        responses["404"] = {"description": "no such monitor (or window, or reference version)", **error}
    if endpoint.write:
        responses["401"] = {"description": "missing or wrong bearer token", **error}
        responses["403"] = {"description": "write API disabled: the token variable is not set", **error}
    for status, description in endpoint.errors.items():
        responses[str(status)] = {"description": description, **error}
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": (endpoint.handler.__doc__ or "").strip(),
        "parameters": [{"name": p.name, "in": p.where, "required": p.where == "path", "description": p.description,
                        "schema": p.schema()} for p in endpoint.params],
        "responses": dict(sorted(responses.items())),
    }
    if endpoint.write:
        operation["security"] = [{"bearer": []}]
    return operation


def openapi() -> dict[str, Any]:
    """The OpenAPI 3 document of every endpoint, generated from ENDPOINTS."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        paths.setdefault(API_PREFIX + endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.0.3",
        "info": {"title": "driftd API", "version": __version__,
                 "description": "Drift history and controls. Times are ISO 8601 UTC; lists are newest first "
                                "and paginated by the opaque `next` cursor. Write operations need "
                                "`Authorization: Bearer <token>`."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }

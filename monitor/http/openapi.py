"""The API's OpenAPI 3 document, generated from its endpoints."""

from __future__ import annotations

from typing import Any, Sequence

from monitor import __version__
from monitor.http.params import Endpoint
from monitor.http.params import API_PREFIX
from monitor.store.adaptations import STATES as ADAPTATION_STATES


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
#: A statistic: a number, or the string "Infinity"/"-Infinity" (JSON has no infinity).
_VALUE = {"oneOf": [_N, {"type": "string", "enum": ["Infinity", "-Infinity"]}], "nullable": True}
_RESULT = dict(feature=_S, measure=_S, value=_VALUE, p_value=_nullable(_N), p_value_adjusted=_nullable(_N),
               threshold=_nullable(_N), drifted=_B)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {**_object(error=_S), "properties": {"error": _S, "parameter": _S}},
    "Monitor": _object(
        name=_S, enabled=_B, running=_B, error=_nullable(_S), state=_nullable(_S),
        drift_share=_nullable(_N), last_window=_nullable(_object(seq=_I, ended_at=_nullable(_T), evaluated_at=_T)),
        reference_version=_nullable(_I), source_up=_nullable(_B),
        backlog=_object(rows=_nullable(_I), seconds=_nullable(_N)), windows=_I, events=_I, replica=_nullable(_S),
        config=_object(source=_S, features=_object(numeric=_STRINGS, categorical=_STRINGS),
                       window=_object(rows=_nullable(_I), span=_nullable(_N), timestamp=_nullable(_S)),
                       measures=_array(_object(name=_S, threshold=_nullable(
                           {"oneOf": [_N, {"type": "string", "enum": ["auto"]}]}))),
                       schedule=_object(interval=_nullable(_N), cron=_nullable(_S)),
                       drift=_object(share=_N, consecutive=_I, correction=_S))),
    "MonitorList": _object(monitors=_array(_ref("Monitor"))),
    "Window": _object(seq=_I, reference_version=_I, rows=_I, started_at=_nullable(_T), ended_at=_nullable(_T),
                      evaluated_at=_T, state=_S, drift_share=_nullable(_N), drifted_features=_STRINGS,
                      missing_features=_STRINGS, statistic=_VALUE,
                      failed_measures={"type": "object", "additionalProperties": _S},
                      diagnoses=_array(_object(feature=_S, kind=_S, figures={"type": "object"}, sentence=_S)),
                      segments=_array(_object(segment=_S, rows=_I, drifted=_B, drifted_features=_STRINGS,
                                              missing_features=_STRINGS, in_reference=_B)),
                      performance=_array(_ref("WindowPerformance"))),
    "WindowPerformance": _object(
        metric=_S, estimated=_nullable(_N), lower=_nullable(_N), upper=_nullable(_N), reference=_nullable(_N),
        reference_lower=_nullable(_N), reference_upper=_nullable(_N), reliable=_B, outside_share=_nullable(_N),
        alert=_B, realized=_nullable(_N), labelled_rows=_nullable(_I), realized_at=_nullable(_T),
        estimation_error=_nullable(_N)),
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
    "ForcedAdaptation": _object(monitor=_S, requested_at=_T, taken=_B, replica=_nullable(_S),
                                last_tick=_nullable(_T), message=_S),
    "OpenAPI": {"type": "object", "required": ["openapi", "info", "paths"]},
    "Index": _object(name=_S, version=_S, openapi=_S,
                     endpoints=_array(_object(method=_S, path=_S, summary=_S))),
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


def openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3 document of ``endpoints``."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
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

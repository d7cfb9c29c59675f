"""Turn errors into HTTP: the API's hierarchy, request validation, and unmatched routes."""

import math
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from app.api.deps import REQUEST_ID_HEADER
from app.errors import BodyTooLargeError, PenguinAPIError
from app.v2.errors import as_v2_error, is_v2_path
from penguin_contract import FEATURES, FIELDS

_FIELDS_BY_NAME = {spec.name: spec for spec in FIELDS}
_FIELD_LIST = ", ".join(FEATURES)
# A hostile body can hold thousands of invalid values: the answer lists the first ones.
MAX_LISTED_ISSUES = 20
BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's message for such bodies
Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]


class TruncatedValidationError(RequestValidationError):
    """Validation errors of which only the first ones were kept; ``omitted`` more exist."""

    def __init__(self, errors: list[dict[str, Any]], omitted: int) -> None:
        super().__init__(errors)
        self.omitted = omitted


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PenguinAPIError, _v2_aware(_api_error))
    app.add_exception_handler(RequestValidationError, _v2_aware(_validation_error))
    app.add_exception_handler(StarletteHTTPException, _v2_aware(_http_error))
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _v2_aware(_unexpected_error))


def _v2_aware(handler: Handler) -> Handler:
    """On the Open Inference Protocol's paths the same error is {"error": message}."""

    async def handle(request: Request, error: Exception) -> JSONResponse:
        response = await handler(request, error)
        return as_v2_error(response) if is_v2_path(request.url.path) else response

    return handle


async def _client_gone(request: Request, error: Exception) -> JSONResponse:
    """The client left (or the body's deadline closed its connection) while a route read
    the body: nobody will read an answer, and it is no bug to log."""
    return JSONResponse({"detail": "The client disconnected", "code": "client_disconnected"}, 400)


def _headers(request: Request) -> dict[str, str] | None:
    request_id = getattr(request.state, "request_id", None)
    return {REQUEST_ID_HEADER: request_id} if request_id else None


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, PenguinAPIError)
    return error_response(error, _headers(request))


def error_response(error: PenguinAPIError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"detail": error.message, "code": error.code},
        status_code=error.status_code,
        headers=headers,
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug, not a client error: JSON like every other answer (the traceback goes to the log,
    never to the client)."""
    return JSONResponse(
        {"detail": "Internal server error; the traceback is in the API's log.", "code": "internal"},
        status_code=500,
        headers=_headers(request),
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail
    if error.status_code == 400 and detail == BODY_PARSE_ERROR:
        # e.g. JSON nested too deeply for the parser: an invalid body, like any other.
        issue = {"loc": ["body"], "field": None, "type": "json_invalid", "allowed": None}
        issue["msg"] = "The body could not be parsed as JSON (nested too deeply or malformed)"
        body = {"detail": [issue], "omitted": 0}
        return JSONResponse(body, status_code=422, headers=_headers(request))
    if error.status_code == 413:  # a body sent without Content-Length, counted as it arrives
        limit = request.app.state.settings.max_body_bytes
        return error_response(BodyTooLargeError(limit), _headers(request))
    if error.status_code == 404 and detail == "Not Found":
        detail = "Not Found. GET /models lists the models; POST /classify/{model} classifies."
    return JSONResponse(
        {"detail": detail, "code": f"http_{error.status_code}"},
        status_code=error.status_code,
        headers=error.headers,
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    found = error.errors()
    issues = [validation_issue(raw) for raw in found[:MAX_LISTED_ISSUES]]
    omitted = len(found) - len(issues) + getattr(error, "omitted", 0)
    body = {"detail": issues, "omitted": omitted}
    return JSONResponse(body, status_code=422, headers=_headers(request))


def validation_issue(raw: dict[str, Any]) -> dict[str, Any]:
    """A pydantic/FastAPI error as {loc, field, msg, type, allowed}: names the field and range."""
    loc = _without_union_tags(
        [p if isinstance(p, int) else _shortened(str(p)) for p in raw.get("loc", ())]
    )
    kind = str(raw.get("type", "value_error"))
    field = next((part for part in reversed(loc) if part in _FIELDS_BY_NAME), None)
    issue: dict[str, Any] = {"loc": loc, "field": field, "type": kind, "allowed": None}
    if kind == "json_invalid":
        reason = (raw.get("ctx") or {}).get("error", "invalid JSON")
        issue["msg"] = f"The body is not valid JSON ({reason})"
    elif field is not None:
        spec = _FIELDS_BY_NAME[field]
        issue["allowed"] = spec.allowed()
        message = str(raw.get("msg", "")).removeprefix("Value error, ")
        issue["msg"] = f"{field}: {message}{_got(raw)} (allowed: {spec.allowed()})"
    elif loc == ["body"] and kind == "missing":
        issue["msg"] = f"A JSON body is required, with the fields {_FIELD_LIST}"
    else:
        issue["msg"] = f"{'.'.join(map(str, loc))}: {raw.get('msg')}"
    return issue


def _shortened(text: str, limit: int = 64) -> str:
    """A body's key can be as long as the body: an answer quotes at most ``limit`` chars."""
    return text if len(text) <= limit else f"{text[:limit]}..."


def _without_union_tags(loc: list[int | str]) -> list[int | str]:
    """A tagged union repeats its tag in loc (body.instances.instances.1): keep it once."""
    return [part for index, part in enumerate(loc) if index == 0 or part != loc[index - 1]]


def _got(raw: dict[str, Any]) -> str:
    if raw.get("type") in ("missing", "value_error"):  # nothing given, or already said
        return ""
    value = raw.get("input")
    if isinstance(value, bool) or value is None:
        return f", got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f", got {value}"
    if isinstance(value, int | float):
        return f", got {value!r}"
    if isinstance(value, str):
        return f", got {value[:40]!r}"
    return f", got a {type(value).__name__}"

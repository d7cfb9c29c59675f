"""The API's errors (``APIError``: a message safe for clients, a status, a stable code) and
the one place that turns any error into an answer, one body per protocol: ``{"detail",
"code"}`` (422: ``{"detail": [issues], "omitted"}``), or ``{"error"}`` on the v2 paths.
"""

import re
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from penguin_contract import FEATURES, FIELDS

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what a client's X-Request-ID may be

REQUEST_ID_HEADER = "X-Request-ID"
MAX_LISTED_ISSUES = 20  # a hostile body can hold thousands of invalid values
V2_PREFIX = "/v2"
_FIELDS = {spec.name: spec for spec in FIELDS}
_BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's text for such bodies


class APIError(Exception):
    """An error whose message is safe to show, with its HTTP status and a stable code."""

    def __init__(self, message: str, status_code: int = 500, code: str = "internal") -> None:
        super().__init__(message)
        self.message, self.status_code, self.code = message, status_code, code


class ModelNotFoundError(APIError):
    def __init__(self, name: str, why: str = "not found") -> None:
        message = f"Model {name!r} {why}. GET /models lists the available models"
        super().__init__(
            f"{message} ('best' is the one with the highest test_f1).", 404, "model_not_found"
        )


class ModelUnavailableError(APIError):
    """The model file exists but cannot be served (corrupt, not a pipeline, incompatible)."""

    def __init__(self, name: str, reason: str) -> None:
        message = f"Model {name!r} cannot be used: {reason}. Retrain it or remove its file; "
        super().__init__(
            message + "the other models keep working (GET /models).", 503, "model_unavailable"
        )


class HistoryUnavailableError(APIError):
    """A model's history file exists but cannot be read (not a regular file, too large...)."""

    def __init__(self, filename: str, reason: str) -> None:
        message = f"The version history {filename} cannot be read ({reason})."
        super().__init__(message, 503, "history_unavailable")


class PredictionLogError(APIError):
    """The prediction could not be appended to predictions.log, so it is not returned."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        message = (
            f"The prediction could not be written to the prediction log ({reason}); no "
            "prediction is returned unless it is logged. Check that RESULTS_DIR is writable "
            "and not full (GET /ready)."
        )
        super().__init__(message, 503, "prediction_not_logged")


class InvalidRowsError(APIError):
    """Rows that break the contract: the first issues, in pydantic's shape, and how many
    there are in all (a hostile body can hold thousands)."""

    def __init__(self, errors: list[dict[str, Any]], total: int) -> None:
        super().__init__(f"{total} invalid values", 422, "invalid_input")
        self.errors, self.total = errors, total


class InferenceRequestError(APIError):
    """A v2 request that does not follow the protocol or the model's inputs and outputs."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 400, "invalid_inference_request")


def batch_too_large(size: int, limit: int) -> APIError:
    message = f"Batch of {size} rows exceeds the maximum of {limit} rows per request."
    return APIError(message, 413, "batch_too_large")


def body_too_large(limit: int) -> HTTPException:
    """Raised while the body is read: FastAPI passes HTTPExceptions from there unchanged."""
    message = f"The request body is larger than the maximum of {limit} bytes (MAX_BODY_BYTES)."
    return HTTPException(413, message)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected_error)


def _respond(
    request: Request, status: int, code: str, detail: str | list, omitted: int = 0
) -> JSONResponse:
    """The one place that shapes an error body, by protocol."""
    headers = {REQUEST_ID_HEADER: correlation_id.get() or ""} if status == 500 else {}
    path = request.url.path
    if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
        message = detail if isinstance(detail, str) else "; ".join(i["msg"] for i in detail)
        status = 400 if status == 422 else status  # the protocol's status for a bad request
        return JSONResponse({"error": message}, status, headers)
    if isinstance(detail, list):
        body = {"detail": detail[:MAX_LISTED_ISSUES], "omitted": omitted}
        return JSONResponse(body, status, headers)
    return JSONResponse({"detail": detail, "code": code}, status, headers)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, APIError)
    if isinstance(error, InvalidRowsError):
        issues = [validation_issue(raw) for raw in error.errors[:MAX_LISTED_ISSUES]]
        return _respond(request, 422, error.code, issues, omitted=error.total - len(issues))
    return _respond(request, error.status_code, error.code, error.message)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    found = error.errors()
    issues = [validation_issue(raw) for raw in found[:MAX_LISTED_ISSUES]]
    return _respond(request, 422, "invalid_input", issues, omitted=len(found) - len(issues))


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    status, detail = error.status_code, error.detail
    if status == 400 and detail == _BODY_PARSE_ERROR:  # e.g. JSON nested too deeply
        issue = {"loc": ["body"], "field": None, "type": "json_invalid", "allowed": None}
        issue["msg"] = "The body could not be parsed as JSON (nested too deeply or malformed)"
        return _respond(request, 422, "invalid_input", [issue])
    if status == 404 and detail == "Not Found":
        detail = "Not Found. GET /models lists the models; POST /classify/{model} classifies."
    code = "body_too_large" if status == 413 else f"http_{status}"
    response = _respond(request, status, code, str(detail))
    response.headers.update(error.headers or {})
    return response


async def _client_gone(request: Request, error: Exception) -> JSONResponse:
    """The client left while its body was read: nobody reads this answer, and it is no bug."""
    return _respond(request, 400, "client_disconnected", "The client disconnected")


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    """A bug: the traceback goes to the server's log (Starlette re-raises), never to the client."""
    message = "Internal server error; the traceback is in the API's log."
    return _respond(request, 500, "internal", message)


def validation_issue(raw: dict[str, Any]) -> dict[str, Any]:
    """A pydantic error (or one in its shape) as {loc, field, msg, type, allowed}."""
    # A body's key can be as long as the body: an answer quotes 64 characters of it at most.
    loc = [part if isinstance(part, int) else str(part)[:64] for part in raw["loc"]]
    loc = [part for index, part in enumerate(loc) if index == 0 or part != loc[index - 1]]
    kind = str(raw.get("type", "value_error"))
    field = next((part for part in reversed(loc) if part in _FIELDS), None)
    issue: dict[str, Any] = {"loc": loc, "field": field, "type": kind, "allowed": None}
    if kind == "json_invalid":
        reason = (raw.get("ctx") or {}).get("error", "invalid JSON")
        issue["msg"] = f"The body is not valid JSON ({reason})"
    elif field is not None:
        allowed = _FIELDS[field].allowed()
        message = str(raw.get("msg", "")).removeprefix("Value error, ")
        issue["allowed"] = allowed
        issue["msg"] = f"{field}: {message}{_got(raw)} (allowed: {allowed})"
    elif loc == ["body"] and kind == "missing":
        issue["msg"] = f"A JSON body is required, with the fields {', '.join(FEATURES)}"
    else:
        issue["msg"] = f"{'.'.join(map(str, loc))}: {raw.get('msg')}"
    return issue


def _got(raw: dict[str, Any]) -> str:
    """', got <the input>' (40 characters of it at most); '' when the message says it."""
    if raw.get("type") in ("missing", "value_error") or "input" not in raw:
        return ""
    value = raw["input"]
    if value is not None and not isinstance(value, str | bool | int | float):
        return f", got a {type(value).__name__}"
    return f", got {repr(value)[:40]}"

"""Errors on the protocol's paths: every one answers {"error": "<message>"}, as the spec says.

The API's single exception handler module keeps producing its usual responses; on /v2 paths
``as_v2_error`` rewrites them, so a status and its message are decided in one place only.
"""

import orjson
from fastapi.responses import JSONResponse

from app.errors import PenguinAPIError

V2_PREFIX = "/v2"
# The spec's status for a failed request ("typically 400"); FastAPI's own is 422.
_STATUS_FOR = {422: 400}
_HEADERS_NOT_COPIED = frozenset({"content-length", "content-type"})


class InferenceProtocolError(PenguinAPIError):
    """A request that does not follow the protocol or the model's inputs and outputs."""

    status_code = 400
    code = "invalid_inference_request"


class UnknownVersionError(PenguinAPIError):
    status_code = 404
    code = "model_not_found"

    def __init__(self, name: str, version: str, served: str) -> None:
        super().__init__(
            f"Model {name!r} has no version {version!r}; its only version is {served} "
            "(the sha256 of the file being served)."
        )


def is_v2_path(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def as_v2_error(response: JSONResponse) -> JSONResponse:
    """The same error ({"detail": ...} from the API's handlers) as {"error": message}."""
    detail = orjson.loads(response.body).get("detail")
    if isinstance(detail, list):  # validation issues: each has its own message
        message = "; ".join(str(issue.get("msg", issue)) for issue in detail)
    else:
        message = str(detail)
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in _HEADERS_NOT_COPIED
    }
    status = _STATUS_FOR.get(response.status_code, response.status_code)
    return JSONResponse({"error": message}, status_code=status, headers=headers)

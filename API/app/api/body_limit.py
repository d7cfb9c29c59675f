"""Request bodies above MAX_BODY_BYTES get a JSON 413.

FastAPI's own ``max_body_size`` answers a too-large Content-Length with a plain-text 413 that
replaces any response, so the API uses this middleware instead: a declared length above the
limit is refused before anything reads the body, and a body sent without Content-Length is
counted as it arrives (its 413 goes through the exception handler, same JSON). A body with
a Content-Length within the limit passes untouched: the HTTP parser ends it there.

The body's deadline (BODY_TIMEOUT_S) is the HTTP protocol's (app.http_limits), which already
times every connection.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.exception_handlers import error_response
from app.errors import BodyTooLargeError
from app.v2.errors import as_v2_error, is_v2_path


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared_length, chunked = _body_framing(scope)
        if declared_length > self.max_body_bytes:
            response = error_response(BodyTooLargeError(self.max_body_bytes))
            if is_v2_path(scope["path"]):
                response = as_v2_error(response)
            await response(scope, receive, send)
            return
        if chunked:
            receive = _counted(receive, self.max_body_bytes)
        await self.app(scope, receive, send)


def _counted(receive: Receive, max_body_bytes: int) -> Receive:
    """``receive`` that raises a 413 once the body passes ``max_body_bytes``."""
    received = 0

    async def receive_counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body_bytes:
                raise HTTPException(status_code=413)
        return message

    return receive_counted


def _body_framing(scope: Scope) -> tuple[int, bool]:
    """The Content-Length header's value (0 when absent or not a number: the server rejects
    such requests itself) and whether the body is chunked. Neither: the request has no body."""
    length, chunked = 0, False
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked

"""Bodies above MAX_BODY_BYTES get the API's JSON 413, whether declared or streamed.

FastAPI's own ``max_body_size`` answers a too-large Content-Length with a plain-text 413 that
replaces any response, so the API uses this middleware instead: a declared length above the
limit is refused before anything reads the body, and a body sent without Content-Length is
counted as it arrives (its 413 goes through the exception handler, same JSON).
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
        if _declared_length(scope) > self.max_body_bytes:
            response = error_response(BodyTooLargeError(self.max_body_bytes))
            if is_v2_path(scope["path"]):
                response = as_v2_error(response)
            await response(scope, receive, send)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException passes FastAPI's body parsing untouched.
                    raise HTTPException(status_code=413)
            return message

        await self.app(scope, counted_receive, send)


def _declared_length(scope: Scope) -> int:
    """The Content-Length header's value; 0 when absent or not a number (the server rejects
    such requests itself)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0

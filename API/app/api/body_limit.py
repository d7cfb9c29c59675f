"""Request bodies: above MAX_BODY_BYTES a JSON 413, slower than BODY_TIMEOUT_S a JSON 408.

FastAPI's own ``max_body_size`` answers a too-large Content-Length with a plain-text 413 that
replaces any response, so the API uses this middleware instead: a declared length above the
limit is refused before anything reads the body, and a body sent without Content-Length is
counted as it arrives (its 413 goes through the exception handler, same JSON).

BODY_TIMEOUT_S is a total deadline for the whole body, counted from the moment the headers
are in, not an idle timeout between chunks: a client that trickles a byte every second would
otherwise hold a connection for days. When it passes while the app waits for the body, this
middleware answers 408 ``request_timeout`` itself (with ``connection: close``, since the rest
of the body may still be on its way) and mutes whatever the app answers to the aborted read.
"""

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.exception_handlers import error_response
from app.errors import BodyTooLargeError, PenguinAPIError, RequestTimeoutError
from app.v2.errors import as_v2_error, is_v2_path


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared_length, chunked = _body_framing(scope)
        if declared_length > self.max_body_bytes:
            await _refusal(scope, BodyTooLargeError(self.max_body_bytes))(scope, receive, send)
            return
        if declared_length == 0 and not chunked:  # no body to wait for (GET /health...)
            await self.app(scope, receive, send)
            return
        request = _GuardedRequest(receive, send, self.max_body_bytes)
        # One timer per request rather than a timeout around every receive (asyncio.timeout_at
        # cost ~10 us per request): when it fires before the body is complete, the task is
        # cancelled wherever it waits for the body.
        task = asyncio.current_task()
        assert task is not None
        timer = asyncio.get_running_loop().call_later(self.body_timeout_s, request.expire, task)
        try:
            await self.app(scope, request.receive, request.send)
        except asyncio.CancelledError:
            if not request.timed_out:
                raise
            task.uncancel()
        except Exception:
            if not request.timed_out:
                raise
        finally:
            timer.cancel()
        if request.timed_out:
            error = RequestTimeoutError("body", self.body_timeout_s, "BODY_TIMEOUT_S")
            await _refusal(scope, error, {"connection": "close"})(scope, receive, send)


def _refusal(scope: Scope, error: PenguinAPIError, headers: dict[str, str] | None = None):
    """The error's JSON answer, in the Open Inference Protocol's shape on its paths."""
    response = error_response(error, headers)
    return as_v2_error(response) if is_v2_path(scope["path"]) else response


class _GuardedRequest:
    """``receive`` that counts the body against its size limit; ``expire`` that marks the
    request timed out (and cancels its task) if the body is still incomplete and no response
    has started; ``send`` that goes quiet once it has."""

    def __init__(self, receive: Receive, send: Send, max_body_bytes: int):
        self._receive = receive
        self._send = send
        self._max_body_bytes = max_body_bytes
        self._received = 0
        self._body_complete = False
        self._response_started = False
        self.timed_out = False

    def expire(self, task: asyncio.Task) -> None:
        if not self._body_complete and not self._response_started:
            self.timed_out = True
            task.cancel()

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not self._body_complete:
            self._received += len(message.get("body", b""))
            if self._received > self._max_body_bytes:
                raise HTTPException(status_code=413)
            self._body_complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.timed_out:
            return
        if message["type"] == "http.response.start":
            self._response_started = True
        await self._send(message)


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

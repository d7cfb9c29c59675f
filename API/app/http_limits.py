"""uvicorn's httptools protocol with deadlines for slow clients, a cap on header size, and
one write per response.

uvicorn (0.54) bounds only the idle time between requests (``timeout_keep_alive``), and even
that timer is cancelled by any byte received and re-armed only when a response completes.
So a client that sends half its headers, or a body after its response, holds the connection
forever, and httptools accepts headers of any size. This protocol keeps one deadline per
connection, whatever phase the client is in:

- headers: HEADER_TIMEOUT_S from the connection (first request) or from the request's first
  byte (keep-alive). Past it: 408 and close (an idle new connection is simply closed).
- body: BODY_TIMEOUT_S from the end of the headers, a total deadline for the whole body (a
  client that trickles a byte a second must not hold a connection for days). Past it, if
  no response has started: 408 and close; the app, still waiting for the body, then reads a
  disconnect and whatever it answers is dropped. If the response was sent without reading
  the body, the connection is closed.
- send: SEND_TIMEOUT_S from the moment the transport's send buffer fills up (the client is
  not reading) until it drains again. Past it the connection is dropped without flushing
  (a close would wait for the client to read), and the app's pending send returns: a client
  that pipelines requests and never reads the answers cannot hold a connection forever.
- idle: KEEP_ALIVE_S after a response once the request is complete, armed again whenever a
  response completes and disarmed only by a new request, not by stray bytes.

While a request is being answered no deadline but the send one applies: that is the app's
time, not the client's. Only uvicorn's public protocol methods are overridden; each calls
the original.

uvicorn gets the connection's transport wrapped in ``OneWritePerTurn``, so a response's head
and body leave in one system call (below).

A request moves the deadline four times. Rather than cancel and create a timer each time
(~5 % of the throughput of a small request), the connection keeps one timer: moving the
deadline later only records it, and the timer, when it fires early, is set again for the
recorded deadline. Only an earlier deadline moves the timer.
"""

import asyncio
import json
import logging
from dataclasses import dataclass
from enum import Enum

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from app.errors import RequestTimeoutError
from app.v2.errors import is_v2_path

logger = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float
    body_timeout_s: float
    send_timeout_s: float
    keep_alive_s: float
    max_header_bytes: int


class Phase(Enum):
    NEW = "new"  # a new connection, no byte of a request yet
    IDLE = "idle"  # between requests on a keep-alive connection
    HEADERS = "headers"  # waiting for (the rest of) a request line and headers
    BODY = "body"  # headers in, waiting for the rest of the body
    COMPLETE = "complete"  # the whole request is in


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools turns it into HttpParserCallbackError, and
    uvicorn answers any parser error with 400 and closes the connection."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args, limits: ConnectionLimits, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.phase = Phase.NEW
        self.header_bytes = 0
        self.deadline_at: float | None = None  # loop time; None: no deadline
        self.writing_paused = False  # the send buffer is full: the send deadline runs
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWritePerTurn(transport, self.loop))  # type: ignore[arg-type]
        self._arm(self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A first request keeps the deadline armed when the connection was made.
        if self.phase is not Phase.NEW:
            self._arm(self.limits.header_timeout_s)
        self.phase = Phase.HEADERS
        self.header_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_header_bytes(len(name) + len(value))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.phase = Phase.BODY
        self._arm(self.limits.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.phase = Phase.COMPLETE
        super().on_message_complete()
        if self._answering():
            self._disarm()
        else:  # a body that arrived after its response: nobody else re-arms keep-alive
            self._arm(self.limits.keep_alive_s)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.phase is Phase.COMPLETE and not self.transport.is_closing():
            self.phase = Phase.IDLE
            self._arm(self.limits.keep_alive_s)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._arm(self.limits.send_timeout_s)
        self.writing_paused = True  # after arming: while paused, no phase moves the deadline

    def resume_writing(self) -> None:
        super().resume_writing()
        self.writing_paused = False
        if self._answering():
            self._disarm()
        else:
            self._arm(self._current_timeout())

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the connection now belongs to the websocket protocol
        super().handle_websocket_upgrade()

    def _count_header_bytes(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > self.limits.max_header_bytes:
            logger.info("Request headers above %d bytes (MAX_HEADER_BYTES)", self.header_bytes)
            raise HeadersTooLarge

    def _answering(self) -> bool:
        """True while the app is working on a request whose response is not complete."""
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self, delay_s: float) -> None:
        if self.writing_paused:
            return
        self.deadline_at = self.loop.time() + delay_s
        if self.timer is None or self.deadline_at < self.timer.when():
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.loop.call_at(self.deadline_at, self._timer_fired)

    def _disarm(self) -> None:
        if not self.writing_paused:
            self.deadline_at = None

    def _timer_fired(self) -> None:
        self.timer = None
        if self.deadline_at is None:
            return
        if self.loop.time() < self.deadline_at:  # the deadline was moved later meanwhile
            self.timer = self.loop.call_at(self.deadline_at, self._timer_fired)
            return
        self.deadline_at = None
        self._deadline_passed()

    def _deadline_passed(self) -> None:
        if self.writing_paused:
            logger.info("Dropping a connection whose client stopped reading its responses")
            self.transport.abort()
            return
        if self.transport.is_closing():
            return
        if self.phase is Phase.BODY and not self._response_started():
            logger.info("Closing a connection whose request body took too long")
            error = RequestTimeoutError("body", self.limits.body_timeout_s, "BODY_TIMEOUT_S")
            self.transport.write(_timeout_response(error, self.cycle))
        elif self._answering():
            # A pipelined request, or a response being written: look again later rather
            # than cut a response.
            self._arm(self._current_timeout())
            return
        elif self.phase is Phase.HEADERS:
            logger.info("Closing a connection whose request headers took too long")
            error = RequestTimeoutError("headers", self.limits.header_timeout_s, "HEADER_TIMEOUT_S")
            self.transport.write(_timeout_response(error, None))
        self.transport.close()

    def _response_started(self) -> bool:
        return self.cycle is not None and self.cycle.response_started

    def _current_timeout(self) -> float:
        if self.phase is Phase.HEADERS:
            return self.limits.header_timeout_s
        if self.phase is Phase.BODY:
            return self.limits.body_timeout_s
        return self.limits.keep_alive_s


class OneWritePerTurn:
    """A connection's transport that sends everything written during one turn of the event
    loop with one ``write``.

    uvicorn writes a response's head and its body separately: for a small answer that is two
    system calls and two TCP segments where one would do, and the first of them, which wakes
    the client up, was the most expensive call of a prediction (+6 % req/s measured for one
    write). Writes are held until the callbacks already queued have run (``call_soon``);
    beyond MAX_HELD_BYTES they are sent at once, so a large body meets flow control as
    before. ``close`` sends what is held first; ``abort`` drops it.
    """

    MAX_HELD_BYTES = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not self._held:
            self._loop.call_soon(self._send_held)
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self.MAX_HELD_BYTES:
            self._send_held()

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._held_bytes + self._transport.get_write_buffer_size()

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._held_bytes = 0
        self._transport.abort()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)

    def _send_held(self) -> None:
        if not self._held:
            return
        data = b"".join(self._held)
        self._held.clear()
        self._held_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)


def _timeout_response(error: RequestTimeoutError, cycle: RequestResponseCycle | None) -> bytes:
    """The 408 the app would give: {"detail", "code"}, or {"error"} on /v2 paths."""
    on_v2 = cycle is not None and is_v2_path(cycle.scope["path"])
    content = {"error": error.message} if on_v2 else {"detail": error.message, "code": error.code}
    body = json.dumps(content).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body

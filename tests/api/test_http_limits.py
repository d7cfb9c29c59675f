"""app.http_limits.OneWritePerTurn: what one turn of the event loop writes leaves in one write.

(The deadlines of the same protocol are tested against a live server in
tests/reliability/test_slow_clients.py.)
"""

import asyncio
import json
import socket

from support.api import ADELIE
from support.live_server import live_server

from app.http_limits import OneWritePerTurn


class RecordingTransport:
    """The parts of an asyncio transport OneWritePerTurn uses, recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes | None]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default=None):
        return ("127.0.0.1", 8000) if name == "sockname" else default


async def _next_turns() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_writes_of_one_turn_leave_in_one_write_in_order():
    async def scenario() -> list:
        inner = RecordingTransport()
        transport = OneWritePerTurn(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert inner.calls == []  # held until the turn ends
        await _next_turns()
        transport.write(b"next")
        await _next_turns()
        return inner.calls

    assert asyncio.run(scenario()) == [
        ("write", b"HTTP/1.1 200 OK\r\n\r\nbody"),
        ("write", b"next"),
    ]


def test_close_sends_what_is_held_first_and_abort_drops_it():
    async def scenario() -> tuple[list, list]:
        loop = asyncio.get_running_loop()
        closed, aborted = RecordingTransport(), RecordingTransport()
        to_close = OneWritePerTurn(closed, loop)  # type: ignore[arg-type]
        to_close.write(b"last words")
        to_close.close()
        to_abort = OneWritePerTurn(aborted, loop)  # type: ignore[arg-type]
        to_abort.write(b"never read")
        to_abort.abort()
        await _next_turns()
        return closed.calls, aborted.calls

    closed, aborted = asyncio.run(scenario())
    assert closed == [("write", b"last words"), ("close", None)]
    assert aborted == [("abort", None)]


def test_a_large_body_is_not_held_so_flow_control_sees_it():
    big = b"x" * (OneWritePerTurn.MAX_HELD_BYTES + 1)

    async def scenario() -> list:
        inner = RecordingTransport()
        transport = OneWritePerTurn(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head")
        transport.write(big)
        sent_before_the_turn_ended = list(inner.calls)
        await _next_turns()
        assert inner.calls == sent_before_the_turn_ended  # nothing left to send
        return sent_before_the_turn_ended

    assert asyncio.run(scenario()) == [("write", b"head" + big)]


def test_other_transport_methods_reach_the_real_transport():
    async def scenario():
        transport = OneWritePerTurn(RecordingTransport(), asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"12345")
        return transport.get_extra_info("sockname"), transport.get_write_buffer_size()

    assert asyncio.run(scenario()) == (("127.0.0.1", 8000), 5)


def test_a_prediction_arrives_whole_in_the_first_read(server_env, tmp_path):
    """With the head and the body written separately (uvicorn's own protocol), the client's
    first read usually gets the head alone."""
    body = json.dumps(ADELIE).encode()
    request = (
        b"POST /classify/svm HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    with live_server(server_env, tmp_path / "server.log") as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            firsts = []
            for _ in range(20):
                sock.sendall(request)
                firsts.append(sock.recv(65536))
    for first in firsts:
        head, _, answer = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), first
        assert json.loads(answer)["species_name"] == "Adelie"

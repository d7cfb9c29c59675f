"""HTTP/1.1 over raw sockets, for clients that httpx would not play: half-sent headers, a
stalled or trickled body, a client that never reads. Used against the classroom nginx."""

import json
import selectors
import socket
import time
from dataclasses import dataclass


def connect(host: str, port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:  # before connect: it sets the advertised window
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, port))
    return sock


def request_head(
    method: str, path: str, length: int | None = None, close: bool = False, **headers: str
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Ending:
    seconds: float  # from the start until the server closed the connection
    received: bytes  # everything the server sent before closing


def wait_until_closed(
    sockets: list[socket.socket], started: float, limit_s: float
) -> list[Ending | None]:
    """How long each socket took to be closed by the server (None: still open at limit_s)."""
    received = {sock: b"" for sock in sockets}
    endings: dict[socket.socket, Ending] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(endings) < len(sockets):
            remaining = started + limit_s - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(timeout=remaining):
                sock = key.fileobj
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                received[sock] += chunk
                if not chunk:
                    endings[sock] = Ending(time.monotonic() - started, received[sock])
                    selector.unregister(sock)
    return [endings.get(sock) for sock in sockets]


def status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, leaving the connection open."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += _received(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        body += _received(sock)
    return head + b"\r\n\r\n" + body


def _received(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)  # the socket's timeout bounds the wait
    assert chunk, "the server closed the connection in the middle of a response"
    return chunk


def read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def readable(sock: socket.socket, wait_s: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=wait_s))

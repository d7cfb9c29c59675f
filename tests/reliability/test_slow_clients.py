"""Slow and greedy clients cannot hold a worker's connections: every phase has a deadline.

Raw sockets play the clients (httpx would not send half a request). The API runs with the
production launcher and short limits set through the environment, as an operator would.
"""

import json
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.api import ADELIE
from support.live_server import LiveServer, live_server
from support.models import ModelStore

HEADER_TIMEOUT_S = 1.5
BODY_TIMEOUT_S = 2.5
SEND_TIMEOUT_S = 2.0
KEEP_ALIVE_S = 1.5
# How late a deadline may be enforced on a busy 2-core machine; and how early (timer slack).
LATE_MARGIN_S = 1.5
EARLY_MARGIN_S = 0.1
SLOW_CLIENTS = 60
HEALTH_PROBES = 10
HEALTH_LATENCY_S = 0.1
LIMITED_CONNECTIONS = 5

BODY = json.dumps(ADELIE).encode()
HALF_HEADERS = b"POST /classify/svm HTTP/1.1\r\nHost: test\r\nContent-Ty"
BIG_FILE = Path(__file__).parents[2] / "API/app/static/swagger-ui/swagger-ui-bundle.js"
BIG_PATH = "/static/swagger-ui/swagger-ui-bundle.js"


def _limits_env(**overrides: str) -> dict[str, str]:
    return {
        "HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
        "KEEP_ALIVE_S": str(KEEP_ALIVE_S),
        **overrides,
    }


def _store_env(store: ModelStore, results: Path) -> dict[str, str]:
    return {
        "MODELS_DIR": str(store.models_dir),
        "REPORT_PATH": str(store.report_path),
        "RESULTS_DIR": str(results),
    }


@pytest.fixture(scope="module")
def server(trained_models: ModelStore, tmp_path_factory) -> Iterator[LiveServer]:
    """Two workers, as in production: the limits must reach spawned workers too."""
    tmp = tmp_path_factory.mktemp("slow_clients")
    (tmp / "results").mkdir()
    env = {**_store_env(trained_models, tmp / "results"), **_limits_env()}
    with live_server(env, tmp / "server.out", workers=2) as running:
        yield running


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _request_head(method: str, path: str, length: int | None = None, close=False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Ending:
    seconds: float  # from the start until the server closed the connection
    received: bytes  # everything the server sent before closing


def _wait_until_closed(sockets: list[socket.socket], started: float, limit_s: float) -> list:
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


def _status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _health_latency(server: LiveServer) -> float:
    """Seconds for /health on a new connection, from connect to the whole answer."""
    started = time.perf_counter()
    assert _health_status_on_new_connection(server) == 200
    return time.perf_counter() - started


def _health_status_on_new_connection(server: LiveServer) -> int:
    with _connect(server) as sock:
        sock.sendall(_request_head("GET", "/health", close=True))
        return int(_read_until_closed(sock).split()[1])


def _read_response(sock: socket.socket) -> bytes:
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


def _read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _assert_cut_on_time(ending: Ending | None, deadline_s: float) -> None:
    assert ending is not None, f"still open {deadline_s + LATE_MARGIN_S} s later"
    assert deadline_s - EARLY_MARGIN_S <= ending.seconds <= deadline_s + LATE_MARGIN_S


def _assert_timeout_answer(ending: Ending, part: str) -> None:
    status, body = _status_and_json(ending.received)
    assert status == 408
    assert body["code"] == "request_timeout"
    assert part in body["detail"]


def test_half_sent_headers_and_silent_connections_are_cut_while_health_stays_fast(server):
    with ExitStack() as stack:
        half_sent, silent = [], []
        for index in range(SLOW_CLIENTS):
            sock = stack.enter_context(_connect(server))
            if index % 2:
                sock.sendall(HALF_HEADERS)
                half_sent.append(sock)
            else:
                silent.append(sock)
        started = time.monotonic()
        latencies = [_health_latency(server) for _ in range(HEALTH_PROBES)]
        endings = _wait_until_closed(half_sent + silent, started, HEADER_TIMEOUT_S + LATE_MARGIN_S)

    assert max(latencies) < HEALTH_LATENCY_S, latencies
    for ending in endings:
        _assert_cut_on_time(ending, HEADER_TIMEOUT_S)
    for ending in endings[: len(half_sent)]:
        _assert_timeout_answer(ending, "headers")
    assert all(ending.received == b"" for ending in endings[len(half_sent) :])


def test_half_sent_headers_on_a_kept_alive_connection_are_cut(server):
    with _connect(server) as sock:
        sock.sendall(_request_head("GET", "/health"))
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(KEEP_ALIVE_S / 2)
        started = time.monotonic()
        sock.sendall(HALF_HEADERS)
        [ending] = _wait_until_closed([sock], started, HEADER_TIMEOUT_S + LATE_MARGIN_S)
    _assert_cut_on_time(ending, HEADER_TIMEOUT_S)
    _assert_timeout_answer(ending, "headers")


def test_a_stalled_body_gets_408_json_and_the_connection_is_closed(server):
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(_request_head("POST", "/classify/svm", length=200) + BODY[:20])
        [ending] = _wait_until_closed([sock], started, BODY_TIMEOUT_S + LATE_MARGIN_S)
    _assert_cut_on_time(ending, BODY_TIMEOUT_S)
    _assert_timeout_answer(ending, "body")
    assert b"connection: close" in ending.received.lower()


def test_a_stalled_body_on_a_v2_path_gets_the_protocols_error_body(server):
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(_request_head("POST", "/v2/models/svm/infer", length=200) + b'{"inputs"')
        [ending] = _wait_until_closed([sock], started, BODY_TIMEOUT_S + LATE_MARGIN_S)
    _assert_cut_on_time(ending, BODY_TIMEOUT_S)
    status, body = _status_and_json(ending.received)
    assert status == 408
    assert list(body) == ["error"] and "BODY_TIMEOUT_S" in body["error"]
    # The route was reading the body when the deadline closed the connection: no traceback.
    assert "Traceback" not in server.output()


def _send_slowly(sock: socket.socket, data: bytes, pause_s: float, limit_s: float) -> None:
    """One byte every ``pause_s`` until ``data`` is sent, the server answers or closes, or
    ``limit_s`` has passed."""
    stop = time.monotonic() + limit_s
    for byte in data:
        if _readable(sock, pause_s) or time.monotonic() > stop:
            return
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return


def _readable(sock: socket.socket, wait_s: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=wait_s))


def test_the_body_deadline_is_total_a_steady_body_passes_a_trickle_is_cut(server):
    with _connect(server) as steady:
        steady.sendall(_request_head("POST", "/classify/svm", length=len(BODY), close=True))
        for start in range(0, len(BODY), len(BODY) // 5):  # 5 pieces over ~1 s
            time.sleep(BODY_TIMEOUT_S / 12)
            steady.sendall(BODY[start : start + len(BODY) // 5])
        status, answer = _status_and_json(_read_until_closed(steady))
    assert status == 200
    assert answer["species_name"] == "Adelie"

    with _connect(server) as trickle:
        started = time.monotonic()
        trickle.sendall(_request_head("POST", "/classify/svm", length=len(BODY)))
        # Never idle for long, but slower than the deadline allows for the whole body.
        pause_s = 1.5 * BODY_TIMEOUT_S / len(BODY)
        _send_slowly(trickle, BODY, pause_s, limit_s=BODY_TIMEOUT_S + LATE_MARGIN_S)
        [ending] = _wait_until_closed([trickle], started, BODY_TIMEOUT_S + LATE_MARGIN_S)
    _assert_cut_on_time(ending, BODY_TIMEOUT_S)
    _assert_timeout_answer(ending, "body")


def test_a_body_nobody_reads_cannot_hold_the_connection_after_its_response(server):
    # /health answers without reading the body; the client keeps trickling the rest of it.
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(_request_head("GET", "/health", length=1000))
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        _send_slowly(sock, b"x" * 1000, pause_s=0.2, limit_s=BODY_TIMEOUT_S + LATE_MARGIN_S)
        [ending] = _wait_until_closed([sock], started, BODY_TIMEOUT_S + LATE_MARGIN_S)
    _assert_cut_on_time(ending, BODY_TIMEOUT_S)


def test_headers_above_max_header_bytes_are_refused(server):
    padding = "".join(f"X-Padding-{n}: {'a' * 1000}\r\n" for n in range(100))  # ~100 kB
    request = f"GET /health HTTP/1.1\r\nHost: test\r\n{padding}\r\n".encode()
    with _connect(server) as sock:
        try:
            sock.sendall(request)
            answer = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""  # closed while the client was still sending: refused too
    assert not answer.startswith(b"HTTP/1.1 200")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400")
    assert _health_latency(server) < 10  # the worker is fine


@contextmanager
def _held_connections(server: LiveServer, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections stuck in their headers, closed on exit."""
    with ExitStack() as stack:
        held = [stack.enter_context(_connect(server)) for _ in range(count)]
        for sock in held:
            sock.sendall(HALF_HEADERS)
        yield held


def _wait_for_health_200(server: LiveServer, limit_s: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        if _health_status_on_new_connection(server) == 200:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"/health did not recover within {limit_s} s")


def test_connections_beyond_max_connections_get_503_and_the_worker_recovers(
    trained_models: ModelStore, tmp_path
):
    (tmp_path / "results").mkdir()
    env = {
        **_store_env(trained_models, tmp_path / "results"),
        # Held connections must outlive the test's steps: no header deadline gets in the way.
        **_limits_env(MAX_CONNECTIONS=str(LIMITED_CONNECTIONS), HEADER_TIMEOUT_S="60"),
    }
    # One worker: with two, the kernel picks which one accepts each connection.
    with live_server(env, tmp_path / "server.out", workers=1) as limited:
        with _held_connections(limited, LIMITED_CONNECTIONS - 1):
            assert _health_status_on_new_connection(limited) == 200  # the last free one
        _wait_for_health_200(limited, limit_s=5)
        with _held_connections(limited, LIMITED_CONNECTIONS):
            statuses = [_health_status_on_new_connection(limited) for _ in range(3)]
        assert statuses == [503, 503, 503]
        assert _wait_for_health_200(limited, limit_s=5) < 5


def test_a_client_that_never_reads_its_responses_is_dropped(server):
    """Pipelined requests for a 1.7 MB file, never read: once the server's buffers are full
    its writes wait on the client; SEND_TIMEOUT_S later the connection is dropped."""
    requests = 8
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window
        sock.settimeout(10)
        sock.connect((host, int(port)))
        sock.sendall(_request_head("GET", BIG_PATH) * requests)
        time.sleep(SEND_TIMEOUT_S + LATE_MARGIN_S)
        assert _health_latency(server) < HEALTH_LATENCY_S * 10
        received, ended = 0, False
        sock.settimeout(1)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
            ended = True  # the server closed the connection
        except ConnectionResetError:
            ended = True
        except TimeoutError:
            pass  # still open, and nothing more is coming
    assert ended, "the connection was still open"
    assert received < requests * BIG_FILE.stat().st_size
    assert "stopped reading" in server.output()

"""app.serve, the production launcher: TCP_NODELAY with N workers, supervision, SIGTERM."""

import asyncio
import os
import pickle
import signal
import socket
import statistics
import time
from pathlib import Path

import httpx
from support.api import ADELIE
from support.live_server import live_server

from app.core.config import Settings
from app.http_limits import BoundedHttpToolsProtocol, ConnectionLimits
from app.serve import APP_IMPORT_STRING, bind_tcp_socket, build_config

KEEP_ALIVE_REQUESTS = 30
# A keep-alive request that waits for a delayed ACK (Nagle on) takes ~40 ms on Linux.
NAGLE_FREE_P50_S = 0.02
RESTART_TIMEOUT_S = 60


def _nodelay_of_accepted_connection(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted by plain asyncio on ``listener``."""
    seen: list[int] = []

    class Recorder(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Recorder, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(accept_one())
    return seen[0]


def test_the_launcher_socket_gives_accepted_connections_tcp_nodelay():
    # asyncio sets TCP_NODELAY only when the listener's proto is IPPROTO_TCP; uvicorn's own
    # --workers socket has proto 0 and its connections keep Nagle on (Kludex/uvicorn#3149).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:
        plain.bind(("127.0.0.1", 0))
        assert _nodelay_of_accepted_connection(plain) == 0  # the bug this guards against
    with bind_tcp_socket("127.0.0.1", 0) as launcher_socket:
        assert _nodelay_of_accepted_connection(launcher_socket) == 1


def _worker_pids(launcher_pid: int) -> set[int]:
    """Live uvicorn workers: spawned children, not multiprocessing's resource tracker."""
    children_file = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children")
    children = [int(pid) for pid in children_file.read_text().split()]
    workers = set()
    for pid in children:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if b"spawn_main" in command and state != "Z":
            workers.add(pid)
    return workers


def _wait_for_replacement(launcher_pid: int, killed: int, workers: int) -> None:
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while time.monotonic() < deadline:
        pids = _worker_pids(launcher_pid)
        if killed not in pids and len(pids) >= workers:
            return
        time.sleep(0.1)
    raise AssertionError("the dead worker was not replaced")


def test_two_workers_keep_alive_fast_restart_dead_workers_and_stop_on_sigterm(server_env, tmp_path):
    output = tmp_path / "server.out"
    with live_server(server_env, output, workers=2) as server:
        with server.client(timeout=30) as client:
            timings = []
            for _ in range(KEEP_ALIVE_REQUESTS):  # one connection, kept alive
                started = time.perf_counter()
                assert client.post("/classify/svm", json=ADELIE).status_code == 200
                timings.append(time.perf_counter() - started)
        assert statistics.median(timings[1:]) < NAGLE_FREE_P50_S

        launcher = server.process.pid
        victim = min(_worker_pids(launcher))
        os.kill(victim, signal.SIGKILL)
        _wait_for_replacement(launcher, victim, workers=2)
        for _ in range(10):  # whichever worker takes the connection answers
            response = httpx.post(f"{server.base_url}/classify/svm", json=ADELIE, timeout=30)
            assert response.status_code == 200

        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    assert "Finished server process" in output.read_text()


def test_the_config_carries_the_connection_limits_to_every_worker():
    settings = Settings(
        HEADER_TIMEOUT_S=3,
        BODY_TIMEOUT_S=4,
        SEND_TIMEOUT_S=6,
        KEEP_ALIVE_S=2,
        MAX_CONNECTIONS=7,
        MAX_HEADER_BYTES=2048,
    )
    config = build_config(APP_IMPORT_STRING, settings)
    assert config.timeout_keep_alive == 2
    # uvicorn counts the connection being served: 7 served, the 8th gets 503.
    assert config.limit_concurrency == 8
    # Spawned workers receive the config pickled: the protocol factory must survive that.
    factory = pickle.loads(pickle.dumps(config.http))
    assert factory.func is BoundedHttpToolsProtocol
    assert factory.keywords["limits"] == ConnectionLimits(
        header_timeout_s=3,
        body_timeout_s=4,
        send_timeout_s=6,
        keep_alive_s=2,
        max_header_bytes=2048,
    )


def test_connection_limit_defaults_are_documented():
    fields = Settings.model_fields
    names = ("header_timeout_s", "body_timeout_s", "send_timeout_s", "keep_alive_s")
    for name in (*names, "max_connections"):
        assert fields[name].description, name
    defaults = Settings()
    assert tuple(getattr(defaults, name) for name in names) == (10, 15, 15, 5)
    assert defaults.max_connections == 256

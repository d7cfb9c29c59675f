"""Production launcher: ``python -m app.serve`` (from ``API/``) runs the API on uvicorn.

Host, port and worker count come from the app's settings (``API_HOST``, ``API_PORT``,
``API_WORKERS``). With several workers uvicorn's own supervisor runs them, so a worker that
dies is replaced and SIGTERM drains every worker gracefully.

Why not ``uvicorn --workers N``: uvicorn binds the shared listening socket with ``proto=0``
(Kludex/uvicorn#3149). Accepted connections inherit it and asyncio only sets ``TCP_NODELAY``
when ``proto`` is ``IPPROTO_TCP``, so under Linux every keep-alive request after the first
waits ~40 ms for the client's delayed ACK. Here the socket is bound with ``IPPROTO_TCP``
before it is handed to the supervisor, so every worker's connections get ``TCP_NODELAY``
whatever the event loop (uvloop sets it unconditionally, asyncio only on ``IPPROTO_TCP``).

Slow and greedy clients are bounded per worker (settings HEADER_TIMEOUT_S, BODY_TIMEOUT_S,
SEND_TIMEOUT_S, KEEP_ALIVE_S, MAX_CONNECTIONS, MAX_HEADER_BYTES): uvicorn's own knobs where
it has them (``timeout_keep_alive``, ``limit_concurrency``), app/http_limits.py for what it
lacks.
"""

import logging
import socket
from functools import partial

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.core.config import Settings
from app.http_limits import BoundedHttpToolsProtocol, ConnectionLimits

APP_IMPORT_STRING = "app:app"
# Docker sends SIGKILL 10 s after SIGTERM: finish in-flight requests well before that.
GRACEFUL_SHUTDOWN_SECONDS = 8
# The supervisor kills a worker that does not answer its ping in time. A spawned worker
# imports the whole app (scikit-learn, pandas) before it can answer: ~3 s alone, several
# times that when N workers start at once on a busy machine. uvicorn's 5 s default then
# kills and respawns them in a loop.
WORKER_HEALTHCHECK_TIMEOUT_SECONDS = 60

logger = logging.getLogger("uvicorn.error")


def bind_tcp_socket(host: str, port: int) -> socket.socket:
    """Bind a listening TCP socket whose accepted connections get ``TCP_NODELAY``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def build_config(app: str, settings: Settings) -> uvicorn.Config:
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        send_timeout_s=settings.send_timeout_s,
        keep_alive_s=settings.keep_alive_s,
        max_header_bytes=settings.max_header_bytes,
    )
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        # uvicorn instantiates this with its usual arguments; a module-level class and a
        # dataclass pickle, so spawned workers get the same limits.
        http=partial(BoundedHttpToolsProtocol, limits=limits),
        timeout_keep_alive=settings.keep_alive_s,
        # uvicorn refuses a request once open connections (its own included) reach the limit:
        # +1 so that MAX_CONNECTIONS connections are served and the next one gets 503.
        limit_concurrency=settings.max_connections + 1,
        # Every prediction is already logged by the API and every request is counted in
        # /metrics; a per-request access log line would only cost throughput.
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_SECONDS,
    )


def serve(app: str, settings: Settings) -> None:
    """Serve ``app`` (an import string) as ``settings`` say; block until stopped."""
    config = build_config(app, settings)
    host, port, workers = settings.host, settings.port, settings.workers
    sock = bind_tcp_socket(host, port)
    logger.info("Serving %s on http://%s:%d with %d worker(s)", app, host, port, workers)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    serve(APP_IMPORT_STRING, Settings())


if __name__ == "__main__":
    main()

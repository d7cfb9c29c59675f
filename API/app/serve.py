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
"""

import logging
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

from app.core.config import Settings

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


def build_config(app: str, host: str, port: int, workers: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        # Every prediction is already logged by the API and every request is counted in
        # /metrics; a per-request access log line would only cost throughput.
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_TIMEOUT_SECONDS,
    )


def serve(app: str, host: str, port: int, workers: int) -> None:
    """Serve ``app`` (an import string) with ``workers`` processes; block until stopped."""
    config = build_config(app, host, port, workers)
    sock = bind_tcp_socket(host, port)
    logger.info("Serving %s on http://%s:%d with %d worker(s)", app, host, port, workers)
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    settings = Settings()
    serve(APP_IMPORT_STRING, settings.host, settings.port, settings.workers)


if __name__ == "__main__":
    main()

"""A real uvicorn serving `app:app` in a subprocess on a free 127.0.0.1 port."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, process: subprocess.Popen, base_url: str, output_path: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.output_path = output_path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, **kwargs)

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")


@contextmanager
def live_server(
    env: dict[str, str],
    output_path: Path,
    workers: int = 1,
    extra_args: tuple[str, ...] = (),
    launcher: str = "uvicorn",
) -> Iterator[LiveServer]:
    """Start the API on a free 127.0.0.1 port, wait for /health, and always stop it.

    ``launcher="uvicorn"`` runs `uvicorn --app-dir API app:app --workers N` (plus
    ``extra_args``); ``launcher="serve"`` runs the production launcher `python -m app.serve`
    (from API/, configured by API_HOST, API_PORT, API_WORKERS).
    ``env`` is added to the current environment (MODELS_DIR, REPORT_PATH, RESULTS_DIR, ...).
    The server's output goes to ``output_path``. The process group is stopped with SIGTERM
    (SIGKILL after STOP_TIMEOUT_S), even when the body raised.
    """
    port = free_port()
    server_env = {**os.environ, **env}
    if launcher == "serve":
        command = [sys.executable, "-m", "app.serve", *extra_args]
        cwd = REPO_ROOT / "API"
        server_env.update(API_HOST="127.0.0.1", API_PORT=str(port), API_WORKERS=str(workers))
    elif launcher == "uvicorn":
        command = [
            sys.executable, "-m", "uvicorn", "app:app",
            "--app-dir", str(REPO_ROOT / "API"),
            "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers),
            *extra_args,
        ]  # fmt: skip
        cwd = REPO_ROOT
    else:
        raise ValueError(f"unknown launcher {launcher!r}: use 'uvicorn' or 'serve'")
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=server_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", output_path)
    try:
        _wait_for_health(server)
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for_health(server: LiveServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited at startup:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer /health in {STARTUP_TIMEOUT_S} s")

"""The API in a subprocess on a free 127.0.0.1 port, started as production does by default."""

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import httpx

from support import REPO_ROOT

API_DIR = REPO_ROOT / "API"
STARTUP_TIMEOUT_S = 120
STOP_TIMEOUT_S = 20

# "serve": the production launcher `python -m app.serve`, run from API/.
# "uvicorn": `uvicorn --factory app.main:create_app` run from API/.
# "uvicorn --app-dir": `uvicorn --app-dir API --factory app.main:create_app` from the root.
EntryPoint = Literal["serve", "uvicorn", "uvicorn --app-dir"]


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
    entry_point: EntryPoint = "serve",
    memory_cap_bytes: int | None = None,
) -> Iterator[LiveServer]:
    """Start the API on a free 127.0.0.1 port, wait for /health, and always stop it.

    ``env`` is added to the current environment (MODELS_DIR, REPORT_PATH, RESULTS_DIR, ...).
    Only the production launcher runs several workers: plain uvicorn is there to prove its
    entry points work. The server's output is appended to ``output_path``. The process group
    is stopped with SIGTERM (SIGKILL after STOP_TIMEOUT_S), even when the body raised.
    ``memory_cap_bytes`` caps the server's address space (as `prlimit --as`), for probes
    that could make it eat the machine's memory.
    """
    port = free_port()
    server_env = {**os.environ, **env}
    if entry_point == "serve":
        command, cwd = [sys.executable, "-m", "app.serve"], API_DIR
        server_env.update(API_HOST="127.0.0.1", API_PORT=str(port), API_WORKERS=str(workers))
    else:
        if workers != 1:
            raise ValueError("several workers need the production launcher (entry_point='serve')")
        uvicorn = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
        if entry_point == "uvicorn":
            command, cwd = [*uvicorn, "--factory", "app.main:create_app"], API_DIR
        else:
            command, cwd = (
                [*uvicorn, "--app-dir", "API", "--factory", "app.main:create_app"],
                REPO_ROOT,
            )
    with open(output_path, "ab") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=server_env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if memory_cap_bytes is None else _cap_memory(memory_cap_bytes),
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", output_path)
    try:
        wait_for_health(server)
        yield server
    finally:
        stop(process)


def _cap_memory(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group; SIGKILL it if it is still there after STOP_TIMEOUT_S."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_health(server: LiveServer) -> None:
    """Return once /health answers 200; raise with the server's output if it exits first."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the API exited at startup:\n{server.output()}")
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the API did not answer /health in {STARTUP_TIMEOUT_S} s")

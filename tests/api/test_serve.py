"""app.serve, the production launcher: keep-alive without delayed ACKs with N workers,
supervision, SIGTERM; nothing built at import."""

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from support.api import ADELIE
from support.live_server import live_server

KEEP_ALIVE_REQUESTS = 30
# A keep-alive request that waits for a delayed ACK (Nagle on) takes ~40 ms on Linux.
NAGLE_FREE_P50_S = 0.02
RESTART_TIMEOUT_S = 60


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


def test_importing_the_package_builds_no_app_and_reads_no_disk(tmp_path):
    """uvicorn's factory mode builds the app in each worker; the import itself is inert."""
    code = (
        "import sys, app, app.serve; "
        "assert not hasattr(app, 'app'); "
        "assert 'app.main' not in sys.modules and 'sklearn' not in sys.modules"
    )
    env = {**os.environ, "MODELS_DIR": str(tmp_path / "nowhere")}
    api_dir = Path(__file__).resolve().parents[2] / "API"
    subprocess.run([sys.executable, "-c", code], cwd=api_dir, env=env, check=True)

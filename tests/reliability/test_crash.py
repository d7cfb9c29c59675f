"""kill -9 of the whole server in the middle of load: no torn line, nothing acknowledged lost."""

import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from support.api import ADELIE, read_log
from support.live_server import live_server
from support.load import send_requests

WORKERS = 2
CLIENTS = 8
LINES_BEFORE_KILL = 150
WAIT_FOR_LOAD_S = 60


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _wait_for_lines(path: Path, count: int) -> None:
    deadline = time.monotonic() + WAIT_FOR_LOAD_S
    while _count_lines(path) < count:
        assert time.monotonic() < deadline, f"fewer than {count} predictions logged under load"
        time.sleep(0.05)


def test_kill_9_mid_load_tears_no_line_and_the_server_serves_again(
    server_env, results_dir, penguin_bodies, tmp_path
):
    log_path = results_dir / "predictions.log"
    stop_clients = threading.Event()
    with (
        live_server(server_env, tmp_path / "server.out", WORKERS) as server,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        clients = [
            pool.submit(
                send_requests, server.base_url, 100_000, seed, penguin_bodies, stop=stop_clients
            )
            for seed in range(CLIENTS)
        ]
        _wait_for_lines(log_path, LINES_BEFORE_KILL)
        os.killpg(server.process.pid, signal.SIGKILL)  # the launcher and every worker
        server.process.wait()
        time.sleep(0.2)  # let the clients see refused connections
        stop_clients.set()
        outcomes = [outcome for client in clients for outcome in client.result()]

    assert any(outcome.status == 0 for outcome in outcomes), "the kill did not hit the load"
    lines = read_log(log_path)  # ends with a newline, every line parses
    logged_ids = {line["request_id"] for line in lines}
    acknowledged = {outcome.request_id for outcome in outcomes if outcome.status == 200}
    assert len(acknowledged) >= LINES_BEFORE_KILL - CLIENTS * WORKERS
    assert acknowledged <= logged_ids, "a prediction was returned but never logged"

    with live_server(server_env, tmp_path / "server.out") as server:
        response = httpx.post(f"{server.base_url}/classify/svm", json=ADELIE, timeout=30)
    assert response.status_code == 200
    after_restart = read_log(log_path)
    assert len(after_restart) == len(lines) + 1
    assert after_restart[-1]["request_id"] == response.headers["x-request-id"]

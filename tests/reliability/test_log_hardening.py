"""No other process can stall, redirect or corrupt the prediction log (issue 9, 2, 4 and 7).

A reader holding a lock, a symlink put in the log's place, a tail the API did not write,
and rotation with several workers writing at once, all against the production launcher.
"""

import fcntl
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from support.api import ADELIE, read_log
from support.live_server import live_server


def _all_lines(results_dir: Path) -> list[dict]:
    lines = []
    for path in sorted(results_dir.glob("predictions.log*")):
        lines += read_log(path)
    return lines


def test_a_reader_holding_a_lock_gets_a_bounded_503_and_never_stalls_health(
    server_env, results_dir, tmp_path
):
    env = {**server_env, "LOG_LOCK_TIMEOUT_S": "0.5"}
    with live_server(env, tmp_path / "server.log") as server, server.client(timeout=10) as client:
        assert client.post("/classify/svm", json=ADELIE).status_code == 200
        reader = os.open(results_dir / "predictions.log", os.O_RDONLY)  # as Jupyter's :ro mount
        fcntl.flock(reader, fcntl.LOCK_SH)
        try:
            health_times: list[float] = []
            stop = threading.Event()

            def probe_health() -> None:
                with server.client(timeout=5) as prober:
                    while not stop.is_set():
                        started = time.perf_counter()
                        assert prober.get("/health").status_code == 200
                        health_times.append(time.perf_counter() - started)
                        time.sleep(0.02)

            prober = threading.Thread(target=probe_health)
            prober.start()
            started = time.perf_counter()
            refused = client.post("/classify/svm", json=ADELIE)
            waited = time.perf_counter() - started
            ready = client.get("/ready")
            stop.set()
            prober.join()
        finally:
            os.close(reader)
        after = client.post("/classify/svm", json=ADELIE)

    assert refused.status_code == 503 and "lock" in refused.json()["detail"]
    assert waited < 3, f"the classify waited {waited:.2f} s for the reader's lock"
    assert ready.status_code == 503 and "locked" in ready.json()["checks"]["results_dir"]
    assert max(health_times) < 0.1, f"/health took {max(health_times):.3f} s meanwhile"
    assert after.status_code == 200
    assert len(read_log(results_dir / "predictions.log")) == 2


def test_a_symlink_in_place_of_the_log_is_refused_and_its_target_untouched(
    server_env, results_dir, tmp_path
):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"line one\nline two without newline")
    before = victim.read_bytes()
    with live_server(server_env, tmp_path / "server.log") as server, server.client() as client:
        assert client.post("/classify/svm", json=ADELIE).status_code == 200
        log = results_dir / "predictions.log"
        log.unlink()
        log.symlink_to(victim)
        refused = client.post("/classify/svm", json=ADELIE)
        ready = client.get("/ready")
        log.unlink()
        (results_dir / "dangling.log").symlink_to(tmp_path / "created-through-link")
        log.symlink_to(results_dir / "dangling.log")
        ready_dangling = client.get("/ready")

    assert refused.status_code == 503 and "symlink" in refused.json()["detail"]
    assert ready.status_code == 503 and "symlink" in ready.json()["checks"]["results_dir"]
    assert ready_dangling.status_code == 503
    assert victim.read_bytes() == before
    assert not (tmp_path / "created-through-link").exists()


def test_rotation_with_four_workers_loses_duplicates_and_tears_no_line(
    server_env, results_dir, tmp_path
):
    env = {**server_env, "LOG_MAX_BYTES": "20000", "LOG_BACKUPS": "100"}
    requests = 240
    with (
        live_server(env, tmp_path / "server.log", workers=4) as server,
        ThreadPoolExecutor(8) as pool,
    ):

        def classify(index: int) -> str:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                body = {"instances": [ADELIE] * (1 + index % 3)}
                response = client.post(
                    "/classify/svm/batch", json=body, headers={"X-Request-ID": f"r{index}"}
                )
                assert response.status_code == 200, response.text
                return response.headers["X-Request-ID"]

        sent = list(pool.map(classify, range(requests)))

    lines = _all_lines(results_dir)
    rotated = list(results_dir.glob("predictions.log.*"))
    assert len(rotated) >= 5, "the log was never rotated"
    assert all(path.stat().st_size <= 20000 for path in rotated)
    keys = [(line["request_id"], line["batch_index"]) for line in lines]
    expected = {(f"r{i}", k) for i in range(requests) for k in range(1 + i % 3)}
    assert len(keys) == len(set(keys)), "a line was written twice"
    assert set(keys) == expected, "a line was lost"
    assert set(sent) == {f"r{i}" for i in range(requests)}
    assert all(json.dumps(line) for line in lines)

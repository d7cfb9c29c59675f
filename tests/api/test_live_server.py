"""A real uvicorn with 2 workers: concurrent requests, retraining under load, shared metrics."""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from sklearn.svm import SVC
from support.api import ADELIE, read_log
from support.live_server import live_server

MODELS = ["randomforest", "svm", "gradientboosting", "best"]
CLIENTS = 8
REQUESTS_PER_CLIENT = 25


@pytest.fixture
def server_env(model_store, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    return {
        "MODELS_DIR": str(model_store.models_dir),
        "REPORT_PATH": str(model_store.report_path),
        "RESULTS_DIR": str(results),
    }


def _hammer(server, count: int, seed: int, model_names=MODELS) -> list[tuple[int, str, str]]:
    """(status, request id, model) for ``count`` requests; a few are invalid on purpose."""
    rng = random.Random(seed)
    outcomes = []
    with server.client(timeout=30) as client:
        for _ in range(count):
            model = rng.choice(model_names)
            body = dict(ADELIE) if rng.random() > 0.1 else {**ADELIE, "bill_length_mm": 1000}
            response = client.post(f"/classify/{model}", json=body)
            outcomes.append((response.status_code, response.headers.get("X-Request-ID"), model))
    return outcomes


def test_two_workers_under_concurrency_log_exactly_one_line_per_success(server_env, tmp_path):
    log_path = tmp_path / "results" / "predictions.log"
    with (
        live_server(server_env, tmp_path / "uvicorn.out", workers=2) as server,
        ThreadPoolExecutor(CLIENTS) as pool,
    ):
        batches = pool.map(lambda seed: _hammer(server, REQUESTS_PER_CLIENT, seed), range(CLIENTS))
        outcomes = [outcome for batch in batches for outcome in batch]

    statuses = Counter(status for status, _, _ in outcomes)
    assert set(statuses) <= {200, 422}
    assert statuses[200] > 0.8 * len(outcomes)
    lines = read_log(log_path)  # fails if any line does not parse
    assert len(lines) == statuses[200]
    successful_ids = sorted(rid for status, rid, _ in outcomes if status == 200)
    assert sorted(line["request_id"] for line in lines) == successful_ids
    assert all(line["result"]["species_name"] == "Adelie" for line in lines)


def test_retraining_under_load_gives_no_5xx_and_serves_the_new_model(
    model_store, server_env, tmp_path
):
    original_sha = _report_sha(model_store, "svm")
    stop = threading.Event()
    outcomes: list[int] = []

    def load(seed: int) -> None:
        while not stop.is_set():
            outcomes.extend(status for status, _, _ in _hammer(server, 10, seed, ["svm"]))

    with live_server(server_env, tmp_path / "uvicorn.out", workers=2) as server:
        with ThreadPoolExecutor(4) as pool:
            clients = [pool.submit(load, seed) for seed in range(4)]
            try:
                for c in (0.5, 2.0, 4.0):
                    time.sleep(0.3)
                    model_store.train({"svm": SVC(kernel="rbf", C=c, random_state=1)})
                time.sleep(0.3)
            finally:
                stop.set()
            for client in clients:
                client.result()
        with server.client() as client:
            served = client.get("/models/svm").json()
            after = client.post("/classify/svm", json=ADELIE)

    new_sha = _report_sha(model_store, "svm")
    assert new_sha != original_sha
    assert outcomes and all(status < 500 for status in outcomes)
    assert served["sha256"] == new_sha
    assert served["params"]["C"] == 4.0
    assert after.status_code == 200
    last_line = read_log(tmp_path / "results" / "predictions.log")[-1]
    assert last_line["request_id"] == after.headers["X-Request-ID"]
    assert last_line["model_sha256"] == new_sha


def test_prometheus_multiprocess_mode_aggregates_both_workers(server_env, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**server_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with live_server(env, tmp_path / "uvicorn.out", workers=2) as server:
        with ThreadPoolExecutor(4) as pool:
            outcomes = [
                o for batch in pool.map(lambda s: _hammer(server, 20, s, ["svm"]), range(4))
                for o in batch
            ]  # fmt: skip
        with server.client() as client:
            text = client.get("/metrics").text

    successes = sum(status == 200 for status, _, _ in outcomes)
    [counted] = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('penguin_predictions_total{model="svm",species="Adelie"}')
    ]
    assert counted == successes
    assert list(metrics_dir.glob("counter_*.db")), "the workers kept their counters in files"


def _report_sha(store, name: str) -> str:
    report = pd.read_pickle(store.report_path)
    return report.loc[report["model"] == name, "sha256"].item()

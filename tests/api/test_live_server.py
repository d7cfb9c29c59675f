"""The API live with 2 workers: concurrent requests, retraining under load, shared metrics.

The 2-worker servers run the production launcher (`python -m app.serve`); plain uvicorn in
factory mode (`uvicorn --factory app.main:create_app`) is proved by one test of its own.
"""

import threading
import time
from collections import Counter

import pandas as pd
import pytest
from sklearn.svm import SVC
from support.api import ADELIE, read_log
from support.live_server import live_server
from support.load import Outcome, run_clients, send_requests

WORKERS = 2
CLIENTS = 8
REQUESTS_PER_CLIENT = 25
# One body in ten is invalid on purpose: a 422 must not be logged.
MOSTLY_VALID_BODIES = [ADELIE] * 9 + [{**ADELIE, "bill_length_mm": 1000}]


def test_two_workers_under_concurrency_log_exactly_one_line_per_success(
    server_env, results_dir, tmp_path
):
    with live_server(server_env, tmp_path / "server.out", WORKERS) as server:
        outcomes = run_clients(
            CLIENTS,
            lambda seed: send_requests(
                server.base_url, REQUESTS_PER_CLIENT, seed, MOSTLY_VALID_BODIES
            ),
        )

    statuses = Counter(outcome.status for outcome in outcomes)
    assert set(statuses) <= {200, 422}
    assert statuses[200] > 0.8 * len(outcomes)
    lines = read_log(results_dir / "predictions.log")  # fails if any line does not parse
    assert len(lines) == statuses[200]
    successful_ids = sorted(outcome.request_id for outcome in outcomes if outcome.status == 200)
    assert sorted(line["request_id"] for line in lines) == successful_ids
    assert all(line["result"]["species_name"] == "Adelie" for line in lines)


def test_retraining_under_load_gives_no_5xx_and_serves_the_new_model(
    model_store, server_env, results_dir, tmp_path
):
    original_sha = _report_sha(model_store, "svm")
    stop = threading.Event()

    with live_server(server_env, tmp_path / "server.out", WORKERS) as server:

        def retrain_while_loaded(seed: int) -> list[Outcome]:
            if seed == 0:  # one thread retrains while the others send requests
                try:
                    for c in (0.5, 2.0, 4.0):
                        time.sleep(0.3)
                        model_store.train({"svm": SVC(kernel="rbf", C=c, random_state=1)})
                    time.sleep(0.3)
                finally:
                    stop.set()
                return []
            return send_requests(server.base_url, 100_000, seed, [ADELIE], ("svm",), stop)

        outcomes = run_clients(5, retrain_while_loaded)
        with server.client() as client:
            served = client.get("/models/svm").json()
            after = client.post("/classify/svm", json=ADELIE)

    new_sha = _report_sha(model_store, "svm")
    assert new_sha != original_sha
    failed = [outcome for outcome in outcomes if not 0 < outcome.status < 500]
    assert outcomes and not failed, failed[:5]
    assert served["sha256"] == new_sha
    assert served["params"]["C"] == 4.0
    assert after.status_code == 200
    last_line = read_log(results_dir / "predictions.log")[-1]
    assert last_line["request_id"] == after.headers["X-Request-ID"]
    assert last_line["model_sha256"] == new_sha


def test_prometheus_multiprocess_mode_aggregates_both_workers(server_env, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**server_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with live_server(env, tmp_path / "server.out", WORKERS) as server:
        outcomes = run_clients(
            4, lambda seed: send_requests(server.base_url, 20, seed, [ADELIE], ("svm",))
        )
        with server.client() as client:
            text = client.get("/metrics").text

    successes = sum(outcome.status == 200 for outcome in outcomes)
    [counted] = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('penguin_predictions_total{model="svm",species="Adelie"}')
    ]
    assert counted == successes
    assert list(metrics_dir.glob("counter_*.db")), "the workers kept their counters in files"


@pytest.mark.parametrize("entry_point", ["uvicorn", "uvicorn --app-dir"])
def test_uvicorn_factory_entry_points_serve_the_api(entry_point, server_env, results_dir, tmp_path):
    # `uvicorn --factory app.main:create_app` from API/, or with --app-dir API from the root.
    with (
        live_server(server_env, tmp_path / "server.out", entry_point=entry_point) as server,
        server.client(timeout=30) as client,
    ):
        response = client.post("/classify/randomforest", json=ADELIE)

    assert response.status_code == 200
    assert response.json()["species_name"] == "Adelie"
    [line] = read_log(results_dir / "predictions.log")
    assert line["request_id"] == response.headers["X-Request-ID"]


def _report_sha(store, name: str) -> str:
    report = pd.read_pickle(store.report_path)
    return report.loc[report["model"] == name, "sha256"].item()

"""4 workers, 16 concurrent clients, 5 000+ mixed requests: nothing fails, nothing is lost."""

from collections import Counter

from support.api import read_log
from support.live_server import live_server
from support.load import MODELS, REQUIRED_LOG_KEYS, run_clients, send_requests

WORKERS = 4
CLIENTS = 16
REQUESTS_PER_CLIENT = 320  # 5 120 in all


def test_sustained_mixed_load_logs_one_line_per_prediction(
    server_env, results_dir, penguin_bodies, tmp_path
):
    with live_server(server_env, tmp_path / "server.out", WORKERS) as server:
        outcomes = run_clients(
            CLIENTS,
            lambda seed: send_requests(server.base_url, REQUESTS_PER_CLIENT, seed, penguin_bodies),
        )

    assert len(outcomes) == CLIENTS * REQUESTS_PER_CLIENT
    statuses = Counter(outcome.status for outcome in outcomes)
    assert statuses == {200: len(outcomes)}, f"non-2xx or failed requests: {statuses}"
    assert {outcome.model for outcome in outcomes} == set(MODELS)

    lines = read_log(results_dir / "predictions.log")  # every line must parse
    assert len(lines) == statuses[200]
    assert all(line.keys() >= REQUIRED_LOG_KEYS for line in lines)
    assert sorted(line["request_id"] for line in lines) == sorted(
        outcome.request_id for outcome in outcomes
    )
    served = Counter(line["model"] for line in lines)
    assert set(served) == {"randomforest", "svm", "gradientboosting"}

"""Model files replaced (atomic rename) every ~200 ms under load: no 5xx, no half-read pickle."""

import hashlib
import os
import threading
from collections import Counter

from sklearn.ensemble import RandomForestClassifier
from sklearn.svm import SVC
from support.api import read_log
from support.live_server import live_server
from support.load import run_clients, send_requests
from support.models import ModelStore

WORKERS = 2
CLIENTS = 8
# The clients stop once every model has been swapped MIN_SWAPS times (a fast API serves a
# fixed number of requests before many swaps happen), or after this many requests each.
MAX_REQUESTS_PER_CLIENT = 3000
MIN_SWAPS = 5
SWAP_INTERVAL_S = 0.2
SWAPPED = ("svm", "randomforest")


def _alternatives(model_store: ModelStore, tmp_path) -> dict[str, list[bytes]]:
    """For each swapped model, the served pickle and a retrained alternative (real trainer)."""
    alternative = ModelStore(tmp_path / "alt" / "models", tmp_path / "alt" / "report.pkl")
    alternative.train(
        {
            "svm": SVC(kernel="rbf", C=0.5, random_state=1),
            "randomforest": RandomForestClassifier(n_estimators=30, random_state=7),
        }
    )
    return {
        name: [model_store.model_path(name).read_bytes(), alternative.model_path(name).read_bytes()]
        for name in SWAPPED
    }


def _swap_until(
    stop: threading.Event,
    enough: threading.Event,
    model_store: ModelStore,
    versions,
    swaps: Counter,
) -> None:
    """Write the other version beside the model and os.replace it, as the trainer does;
    set ``enough`` once every model has been swapped MIN_SWAPS times."""
    while not stop.wait(SWAP_INTERVAL_S):
        for name, candidates in versions.items():
            target = model_store.model_path(name)
            temporary = target.with_name(f".{target.name}.swap")
            temporary.write_bytes(candidates[swaps[name] % 2 - 1])
            os.replace(temporary, target)
            swaps[name] += 1
        if min(swaps[name] for name in versions) >= MIN_SWAPS:
            enough.set()


def test_replacing_model_files_under_load_serves_only_whole_models(
    model_store, server_env, results_dir, penguin_bodies, tmp_path
):
    versions = _alternatives(model_store, tmp_path)
    stop, enough = threading.Event(), threading.Event()
    swaps: Counter = Counter()
    swapper = threading.Thread(
        target=_swap_until, args=(stop, enough, model_store, versions, swaps)
    )
    with live_server(server_env, tmp_path / "server.out", WORKERS) as server:
        swapper.start()
        try:
            outcomes = run_clients(
                CLIENTS,
                lambda seed: send_requests(
                    server.base_url,
                    MAX_REQUESTS_PER_CLIENT,
                    seed,
                    penguin_bodies,
                    (*SWAPPED, "best"),
                    stop=enough,
                ),
            )
        finally:
            stop.set()
            swapper.join()

    assert min(swaps.values()) >= MIN_SWAPS, f"too few swaps happened during the load: {swaps}"
    statuses = Counter(outcome.status for outcome in outcomes)
    assert statuses == {200: len(outcomes)}, statuses

    whole_files = {
        name: {hashlib.sha256(data).hexdigest() for data in candidates}
        for name, candidates in versions.items()
    }
    served = {
        (line["model"], line["model_sha256"]) for line in read_log(results_dir / "predictions.log")
    }
    swapped_served = {(name, sha) for name, sha in served if name in SWAPPED}
    assert all(sha in whole_files[name] for name, sha in swapped_served), (
        "a prediction came from a model that is not one of the whole files"
    )
    assert len(swapped_served) > len(SWAPPED), "no replaced model was ever served"

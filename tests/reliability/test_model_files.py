"""Entries of MODELS_DIR that are not plain model files (issue 9, 3), against a live server
under a memory cap: none can hang, bloat or break the API, and listing and classify agree."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support.api import ADELIE
from support.live_server import live_server

GiB = 1024**3
CAP = 3 * GiB  # address space: the API with ONNX Runtime and scikit-learn needs ~1.5 GiB
MAX_MODEL_BYTES = 8 * 1024 * 1024
BAD = {
    "fifo": "a FIFO",
    "zero": "outside MODELS_DIR",  # /dev/zero
    "loop": "symbolic links",
    "outside": "outside MODELS_DIR",
    "huge": "MAX_MODEL_BYTES",
}


def _lay_out_bad_entries(models_dir, elsewhere) -> None:
    os.mkfifo(models_dir / "fifo_model.pkl")
    (models_dir / "zero_model.pkl").symlink_to("/dev/zero")
    (models_dir / "loop_model.pkl").symlink_to("loop_model.pkl")
    (models_dir / "folder_model.pkl").mkdir()
    outside = elsewhere / "svm_model.pkl"
    outside.write_bytes((models_dir / "svm_model.pkl").read_bytes())
    (models_dir / "outside_model.pkl").symlink_to(outside)
    with open(models_dir / "huge_model.pkl", "wb") as huge:
        huge.truncate(MAX_MODEL_BYTES + 1)  # sparse: nothing is allocated
    (models_dir / "inside_model.pkl").symlink_to("svm_model.pkl")


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_bad_entries_are_listed_as_errors_and_never_hang_or_bloat_the_api(
    server_env, model_store, tmp_path
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _lay_out_bad_entries(model_store.models_dir, elsewhere)
    env = {**server_env, "MAX_MODEL_BYTES": str(MAX_MODEL_BYTES)}
    with (
        live_server(env, tmp_path / "server.log", memory_cap_bytes=CAP) as server,
        server.client(timeout=10) as client,
    ):
        listing = client.get("/models")
        bad_answers = {name: client.post(f"/classify/{name}", json=ADELIE) for name in BAD}
        folder = client.post("/classify/folder", json=ADELIE)
        with ThreadPoolExecutor(8) as pool:  # many at once must not tie the workers up
            fifo = list(pool.map(lambda _: client.post("/classify/fifo", json=ADELIE), range(45)))
        started = time.perf_counter()
        others = [
            client.get("/ready"),
            client.post("/classify/svm/batch", json={"instances": [ADELIE]}),
            client.get("/models/svm"),
            client.post("/classify/best", json=ADELIE),
            client.post("/classify/inside", json=ADELIE),
        ]
        elapsed = time.perf_counter() - started
        rss = _rss_bytes(server.process.pid)

    assert listing.status_code == 200
    models = {m["name"]: m for m in listing.json()["available_models"]}
    for name, why in BAD.items():
        assert models[name]["status"] == "error", name
        assert why in models[name]["reason"], (name, models[name]["reason"])
        answer = bad_answers[name]
        assert answer.status_code == 503 and answer.json()["code"] == "model_unavailable", name
        assert why in answer.json()["detail"], name
    assert {response.status_code for response in fifo} == {503}
    assert [response.status_code for response in others] == [200] * 5
    assert "folder" not in models and folder.status_code == 404  # a directory is no model
    assert elapsed < 5
    assert models["inside"]["status"] == "ok"  # a symlink to a model inside MODELS_DIR
    assert rss < 1 * GiB, f"the API grew to {rss / 2**20:.0f} MiB"


@pytest.mark.parametrize("listing_first", [True, False])
def test_a_directory_named_like_a_model_is_no_model(client, model_store, listing_first):
    (model_store.models_dir / "dir_model.pkl").mkdir()
    if listing_first:
        assert "dir" not in {m["name"] for m in client.get("/models").json()["available_models"]}

    answer = client.post("/classify/dir", json=ADELIE)

    assert answer.status_code == 404 and answer.json()["code"] == "model_not_found"
    assert client.post("/classify/best", json=ADELIE).status_code == 200

"""ALLOW_PICKLE=false: the API never unpickles anything (a pickle runs code when loaded).
It serves the ONNX twins, reads metrics only from model_metrics.json, and lists a model
without a usable twin as an error with the reason."""

import pickle

import pytest
from fastapi.testclient import TestClient
from support.api import ADELIE

from app.main import create_app


class CreatesAFile:
    """Unpickling this calls open(path, "w"): the file appears if anything unpickles it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _plant(model_store, tmp_path) -> dict:
    witnesses = {"model": tmp_path / "model-was-unpickled", "report": tmp_path / "report-too"}
    (model_store.models_dir / "evil_model.pkl").write_bytes(
        pickle.dumps(CreatesAFile(str(witnesses["model"])))
    )
    model_store.report_json_path.unlink()
    model_store.report_path.write_bytes(pickle.dumps(CreatesAFile(str(witnesses["report"]))))
    return witnesses


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_no_pickle_is_ever_loaded_when_pickles_are_not_allowed(
    settings, model_store, tmp_path, allow_pickle
):
    witnesses = _plant(model_store, tmp_path)
    app = create_app(settings.model_copy(update={"allow_pickle": allow_pickle}))
    with TestClient(app) as client:
        listed = {m["name"]: m for m in client.get("/models").json()["available_models"]}
        evil = client.post("/classify/evil", json=ADELIE)
        served = client.post("/classify/svm", json=ADELIE)

    assert listed["evil"]["status"] == "error" and evil.status_code == 503
    assert served.status_code == 200 and served.json()["runtime"] == "onnx"
    assert {listed[name]["runtime"] for name in ("svm", "randomforest")} == {"onnx"}
    if allow_pickle:  # proves the planted pickles really run code when loaded
        assert witnesses["model"].exists() and witnesses["report"].exists()
    else:
        assert not witnesses["model"].exists() and not witnesses["report"].exists()
        assert "ALLOW_PICKLE=false and it has no ONNX twin" in listed["evil"]["reason"]


def test_without_pickles_metrics_come_from_the_json_report(settings, model_store):
    app = create_app(settings.model_copy(update={"allow_pickle": False}))
    with TestClient(app) as client:
        models = client.get("/models").json()["available_models"]

    assert all(m["metrics"]["test_f1"] is not None for m in models)
    assert sum(m["best"] for m in models) == 1


def test_without_pickles_a_model_without_twin_is_an_error_and_best_skips_it(settings, model_store):
    model_store.onnx_path("randomforest").unlink()  # the notebook's best model
    app = create_app(settings.model_copy(update={"allow_pickle": False}))
    with TestClient(app) as client:
        listed = client.get("/models/randomforest").json()
        best = client.post("/classify/best", json=ADELIE)

    assert listed["status"] == "error" and "ALLOW_PICKLE=false" in listed["reason"]
    assert best.status_code == 200 and best.json()["model"] != "randomforest"

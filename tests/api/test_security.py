"""Only names that pass the contract's rule become paths; errors never leak internals."""

import shutil

import pytest
from fastapi.testclient import TestClient
from support.api import ADELIE, read_log

from app.main import create_app
from app.predict import Predictor

# A bare ".." is not here: the HTTP client resolves "/models/.." to "/" (the web page) before
# sending; "%2e%2e" reaches the server as "..", and test_ui_route sends raw ".." paths.
ATTEMPTS = [
    "../secret",
    "..%2Fsecret",
    "..%2fsecret",
    "%2e%2e%2fsecret",
    "%2E%2E%2Fsecret",
    "%2e%2e",
    "..%5Csecret",
    "..\\secret",
    "%2Ftmp%2Fsecret",
    "secret%00",
    ".secret",
    "models%2F..%2Fsecret",
    "%252e%252e%252fsecret",
]


@pytest.fixture
def outside_model(model_store):
    """A valid model just outside MODELS_DIR: serving it would prove an escape."""
    outside = model_store.models_dir.parent / "secret_model.pkl"
    shutil.copy(model_store.model_path("svm"), outside)
    (model_store.models_dir.parent / "models_model.pkl").write_bytes(outside.read_bytes())
    return outside


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_traversal_attempts_are_404_and_serve_nothing(client, outside_model, log_path, attempt):
    before = outside_model.stat()

    for response in (
        client.post(f"/classify/{attempt}", json=ADELIE),
        client.post(f"/classify/{attempt}/batch", json={"instances": [ADELIE]}),
        client.get(f"/models/{attempt}"),
    ):
        assert response.status_code == 404, (attempt, response.text)

    assert read_log(log_path) == []
    assert outside_model.stat().st_mtime_ns == before.st_mtime_ns
    assert outside_model.read_bytes()  # untouched, still there


def test_listing_never_leaves_the_models_directory(client, outside_model):
    names = [m["name"] for m in client.get("/models").json()["available_models"]]

    assert "secret" not in names
    assert "models" not in names


def test_an_unexpected_error_is_a_json_500_without_the_traceback(settings, monkeypatch):
    def bug(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(Predictor, "predict", bug)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post("/classify/svm", json=ADELIE)

    assert response.status_code == 500
    assert response.json()["code"] == "internal"
    assert "secret internal detail" not in response.text
    assert response.headers["x-request-id"]

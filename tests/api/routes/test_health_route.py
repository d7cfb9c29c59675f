"""GET /health and GET /ready."""

import shutil

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


def test_health_is_ok_without_touching_any_directory(tmp_path):
    settings = Settings(
        models_dir=tmp_path / "no-models",
        report_path=tmp_path / "no-report.pkl",
        results_dir=tmp_path / "no-results",
    )

    response = TestClient(create_app(settings)).get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert list(tmp_path.iterdir()) == []


def test_ready_when_models_readable_and_results_writable(client):
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"models_dir": "ok", "results_dir": "ok"},
    }


def test_not_ready_without_a_models_directory(client, model_store):
    shutil.rmtree(model_store.models_dir)

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert "does not exist" in response.json()["checks"]["models_dir"]
    assert response.json()["checks"]["results_dir"] == "ok"


def test_not_ready_when_the_results_directory_is_missing(client, results_dir):
    shutil.rmtree(results_dir)

    response = client.get("/ready")

    assert response.status_code == 503
    assert "does not exist" in response.json()["checks"]["results_dir"]


def test_head_answers_like_get_without_a_body(client):
    for path in ("/health", "/ready", "/models"):
        head, get = client.head(path), client.get(path)

        assert head.status_code == get.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]

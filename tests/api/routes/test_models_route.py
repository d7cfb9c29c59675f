"""GET /models and GET /models/{name}."""

import gc
import shutil
import weakref

import pandas as pd
from fastapi.testclient import TestClient
from support.api import ADELIE
from support.models import ModelStore

from app.core.config import Settings
from app.main import create_app
from penguin_contract import METRIC_COLUMNS

PRESCRIBED = ["gradientboosting", "randomforest", "svm"]


def test_lists_every_model_sorted_with_the_seed_shape(client, model_store):
    response = client.get("/models")

    assert response.status_code == 200
    models = response.json()["available_models"]
    assert [m["name"] for m in models] == PRESCRIBED
    report = pd.read_pickle(model_store.report_path).set_index("model")
    for model in models:
        assert model["endpoint"] == f"POST /classify/{model['name']}"
        assert list(model["metrics"]) == list(METRIC_COLUMNS)
        for column in METRIC_COLUMNS:
            assert model["metrics"][column] == report.loc[model["name"], column]
        assert model["status"] == "ok"
        assert model["reason"] is None


def test_empty_or_missing_models_directory_gives_an_empty_list(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for models_dir in (empty, tmp_path / "missing"):
        settings = Settings(
            models_dir=models_dir,
            report_path=tmp_path / "report.pkl",
            results_dir=tmp_path,
        )
        response = TestClient(create_app(settings)).get("/models")
        assert response.status_code == 200
        assert response.json() == {"available_models": []}


def test_a_replaced_model_is_not_kept_in_memory_by_the_listing(settings, model_store):
    app = create_app(settings)
    with TestClient(app) as client:
        client.get("/models")
        replaced = weakref.ref(app.state.catalog.registry.get("svm").runtime)
        shutil.copy(model_store.model_path("randomforest"), model_store.model_path("svm"))
        listed = {m["name"]: m for m in client.get("/models").json()["available_models"]}
        gc.collect()
        assert listed["svm"]["status"] == "ok"
        assert replaced() is None


def test_a_model_without_report_row_is_listed_with_null_metrics(client, model_store):
    shutil.copy(model_store.model_path("svm"), model_store.model_path("unreported"))

    models = {m["name"]: m for m in client.get("/models").json()["available_models"]}

    assert models["unreported"]["metrics"] == dict.fromkeys(METRIC_COLUMNS)
    assert models["unreported"]["status"] == "ok"


def test_new_and_deleted_models_show_on_the_next_request(client, model_store: ModelStore):
    before = [m["name"] for m in client.get("/models").json()["available_models"]]
    shutil.copy(model_store.model_path("svm"), model_store.model_path("svm2"))
    model_store.model_path("randomforest").unlink()

    after = [m["name"] for m in client.get("/models").json()["available_models"]]

    assert before == PRESCRIBED
    assert after == ["gradientboosting", "svm", "svm2"]
    assert client.post("/classify/randomforest", json=ADELIE).status_code == 404
    assert client.post("/classify/svm2", json=ADELIE).json()["model"] == "svm2"


def test_files_outside_the_naming_rule_are_ignored(client, model_store):
    source = model_store.model_path("svm").read_bytes()
    for name in (".svm_model.pkl.abc123.tmp", "Upper_model.pkl", "notes.txt", "x_model.pkl.bak"):
        (model_store.models_dir / name).write_bytes(source)

    names = [m["name"] for m in client.get("/models").json()["available_models"]]

    assert names == PRESCRIBED


def test_describe_model_gives_metadata_and_the_served_sha256(client, model_store):
    trained = pd.read_pickle(model_store.report_path).set_index("model").loc["randomforest"]

    response = client.get("/models/RandomForest")

    assert response.status_code == 200
    detail = response.json()
    assert detail["name"] == "randomforest"
    assert detail["sha256"] == trained["sha256"]
    assert detail["report_matches_file"] is True
    assert detail["sklearn_version"] == trained["sklearn_version"]
    assert detail["trained_at"] == trained["trained_at"]
    assert detail["estimator"] == "RandomForestClassifier"
    assert detail["params"]["n_estimators"] == 100
    assert detail["classes"] == [1, 2, 3]
    assert detail["probabilities"] is True
    assert detail["status"] == "ok"
    assert detail["metrics"]["test_f1"] == trained["test_f1"]


def test_describe_unknown_or_invalid_name_is_404_pointing_to_models(client):
    for name in ("nope", "%2e%2e", "a.b", "x" * 65):  # a bare ".." is resolved by the client
        response = client.get(f"/models/{name}")
        assert response.status_code == 404, name
        assert "GET /models" in response.json()["detail"]


def test_describe_best_resolves_to_the_highest_test_f1(client, model_store):
    report = pd.read_pickle(model_store.report_path)
    expected = report.sort_values(["test_f1", "model"], ascending=[False, True]).iloc[0]

    assert client.get("/models/best").json()["name"] == expected["model"]


def test_report_changes_are_picked_up_without_restart(client, model_store):
    rows = model_store.report_rows()
    next(row for row in rows if row["model"] == "svm")["test_f1"] = 0.123
    model_store.write_report_rows(rows)

    models = {m["name"]: m for m in client.get("/models").json()["available_models"]}

    assert models["svm"]["metrics"]["test_f1"] == 0.123


def test_an_unreadable_report_leaves_metrics_null_and_models_usable(client, model_store):
    model_store.report_path.write_bytes(b"not a pickle")
    model_store.report_json_path.write_bytes(b"not JSON")

    models = client.get("/models").json()["available_models"]

    assert [m["name"] for m in models] == PRESCRIBED
    assert all(m["metrics"] == dict.fromkeys(METRIC_COLUMNS) for m in models)
    assert client.post("/classify/svm", json=ADELIE).status_code == 200

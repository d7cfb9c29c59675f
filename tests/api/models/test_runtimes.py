"""What the API answers is what the pipeline says: labels equal pipeline.predict and
probabilities within 1e-6 of predict_proba on all 333 real birds, whichever runtime serves
the model (issue 9, 5 and issue 10, 2)."""

import shutil

import joblib
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from support.api import body_from_row
from support.models import penguins

from app.main import create_app
from penguin_contract import FEATURES, SPECIES

TOLERANCE = 1e-6
NOTEBOOK_MODELS = ["randomforest", "svm", "gradientboosting"]
WRAPPED = {
    "ovr": OneVsRestClassifier(SVC(probability=True, random_state=0)),
    "grid": GridSearchCV(SVC(probability=True, random_state=0), {"C": [0.5, 1.0]}, cv=3),
    "knn": KNeighborsClassifier(n_neighbors=5),
}


def _birds() -> tuple[np.ndarray, list[dict]]:
    data = penguins()
    rows = data[list(FEATURES)].to_numpy(dtype=np.float64)
    return rows, [body_from_row(bird) for _, bird in data.iterrows()]


def _served(client: TestClient, name: str, bodies: list[dict]) -> list[dict]:
    response = client.post(f"/classify/{name}/batch", json={"instances": bodies})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def _assert_same_answers(store, client: TestClient, name: str, runtime: str) -> None:
    rows, bodies = _birds()
    pipeline = joblib.load(store.model_path(name))
    served = _served(client, name, bodies)

    assert {p["runtime"] for p in served} == {runtime}
    assert [p["species_id"] for p in served] == pipeline.predict(rows).tolist()
    if hasattr(pipeline, "predict_proba"):
        expected = pipeline.predict_proba(rows)
        columns = [SPECIES[int(code)] for code in pipeline.classes_]
        got = np.array([[p["probabilities"][c] for c in columns] for p in served])
        assert np.abs(got - expected).max() <= TOLERANCE
    else:
        assert all(p["probabilities"] is None for p in served)


@pytest.mark.parametrize("name", NOTEBOOK_MODELS)
def test_onnx_twins_answer_what_the_pipeline_says(client, model_store, name):
    _assert_same_answers(model_store, client, name, runtime="onnx")


@pytest.mark.parametrize("name", NOTEBOOK_MODELS)
def test_without_a_twin_scikit_learn_answers_what_the_pipeline_says(client, model_store, name):
    model_store.onnx_path(name).unlink()

    _assert_same_answers(model_store, client, name, runtime="sklearn")
    listed = client.get(f"/models/{name}").json()
    assert listed["runtime"] == "sklearn" and "no ONNX twin" in listed["runtime_reason"]


@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
def test_wrapped_probability_models_answer_pipeline_predict(client, model_store):
    """The label is always pipeline.predict's, never argmax(predict_proba): they differ for
    SVC-based models whose probabilities are calibrated separately."""
    model_store.train(WRAPPED)
    for name in WRAPPED:
        runtime = "onnx" if model_store.onnx_path(name).exists() else "sklearn"
        _assert_same_answers(model_store, client, name, runtime)
        model_store.onnx_path(name).unlink(missing_ok=True)
        _assert_same_answers(model_store, client, name, "sklearn")


def test_a_twin_of_another_pickle_is_never_used(client, model_store):
    shutil.copy(model_store.onnx_path("svm"), model_store.onnx_path("randomforest"))

    listed = client.get("/models/randomforest").json()

    assert listed["runtime"] == "sklearn"
    assert "another version of the pickle" in listed["runtime_reason"]
    _assert_same_answers(model_store, client, "randomforest", runtime="sklearn")


def test_a_truncated_twin_falls_back_to_scikit_learn_with_the_reason(client, model_store):
    twin = model_store.onnx_path("gradientboosting")
    twin.write_bytes(twin.read_bytes()[:1000])

    listed = client.get("/models/gradientboosting").json()

    assert listed["status"] == "ok" and listed["runtime"] == "sklearn"
    assert "cannot be loaded" in listed["runtime_reason"]


def test_retraining_swaps_the_twin_with_the_pickle(settings, model_store):
    with TestClient(create_app(settings)) as client:
        before = client.get("/models/svm").json()["sha256"]
        model_store.train({"svm": SVC(kernel="linear", C=0.5)})
        after = client.get("/models/svm").json()

    assert after["sha256"] != before and after["runtime"] == "onnx"
    assert after["report_matches_file"] is True

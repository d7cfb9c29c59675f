"""GET /models/{name}/versions and model_version in /classify answers (issue 20)."""

import contextlib
import hashlib
import io

from fastapi.testclient import TestClient
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from support.api import ADELIE, read_log
from support.models import ModelStore, penguin_split

from app.core.config import Settings
from app.main import create_app
from penguin_contract import METRIC_COLUMNS


def served_sha(store: ModelStore, name: str) -> str:
    return hashlib.sha256(store.model_path(name).read_bytes()).hexdigest()


def retrain_svm_worse(store: ModelStore) -> dict:
    """A worse svm candidate under the if_better rule (rejected: svm stays as it was)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return store.trainer().train_and_save(
            "svm", SVC(C=0.001), *penguin_split(), scaler=StandardScaler(), promote="if_better"
        )


def test_the_history_is_newest_first_with_the_served_version_marked(client, model_store):
    first = client.get("/models/svm/versions").json()
    candidate = retrain_svm_worse(model_store)

    response = client.get("/models/svm/versions")

    assert response.status_code == 200
    body = response.json()
    served = served_sha(model_store, "svm")
    assert body["model"] == "svm" and body["served_version"] == served
    assert body["versions"][1:] == first["versions"]
    newest, trained = body["versions"][0], body["versions"][1]
    assert candidate["decision"] == "rejected"
    assert newest["version"] == candidate["version"] != served
    assert (newest["decision"], newest["served"], newest["rule"]) == (
        "rejected",
        False,
        "if_better",
    )
    assert newest["reason"] == candidate["reason"]
    assert newest["metrics"]["test_f1"] == candidate["test_f1"]
    assert newest["previous_version"] == served
    assert newest["previous_metrics"]["test_f1"] == trained["metrics"]["test_f1"]
    assert (trained["version"], trained["served"], trained["decision"]) == (
        served,
        True,
        "promoted",
    )
    assert list(trained["metrics"]) == list(METRIC_COLUMNS)
    assert trained["estimator"] == "SVC"


def test_the_history_is_read_with_allow_pickle_false(model_store, results_dir):
    (model_store.report_path).unlink()  # only the JSON files remain readable
    settings = Settings(
        models_dir=model_store.models_dir,
        report_path=model_store.report_path,
        results_dir=results_dir,
        allow_pickle=False,
    )
    with TestClient(create_app(settings)) as client:
        body = client.get("/models/randomforest/versions").json()

    assert body["served_version"] == served_sha(model_store, "randomforest")
    assert [entry["served"] for entry in body["versions"]] == [True]


def test_best_resolves_and_unknown_names_are_404(client):
    best = client.get("/models/best").json()["name"]

    assert client.get("/models/best/versions").json()["model"] == best
    missing = client.get("/models/nope/versions")
    assert missing.status_code == 404
    assert missing.json()["code"] == "model_not_found"


def test_a_model_without_history_has_an_empty_list(client, model_store):
    (model_store.report_path.parent / "svm_history.jsonl").unlink()

    body = client.get("/models/svm/versions").json()

    assert body == {
        "model": "svm",
        "served_version": served_sha(model_store, "svm"),
        "versions": [],
    }


def test_lines_that_are_not_entries_are_skipped(client, model_store):
    history = model_store.report_path.parent / "svm_history.jsonl"
    history.write_text("not json\n" + history.read_text() + '{"version": 3}\n')

    versions = client.get("/models/svm/versions").json()["versions"]

    assert [entry["version"] for entry in versions] == [served_sha(model_store, "svm")]


def test_an_unreadable_history_is_a_503_not_an_empty_list(client, model_store):
    history = model_store.report_path.parent / "svm_history.jsonl"
    history.unlink()
    history.mkdir()

    response = client.get("/models/svm/versions")

    assert response.status_code == 503
    assert response.json()["code"] == "history_unavailable"


def test_every_classify_answer_carries_the_served_version(client, model_store, log_path):
    single = client.post("/classify/randomforest", json=ADELIE).json()
    batch = client.post("/classify/svm/batch", json={"instances": [ADELIE, ADELIE]}).json()

    assert single["model_version"] == served_sha(model_store, "randomforest")
    assert [p["model_version"] for p in batch["predictions"]] == [
        served_sha(model_store, "svm")
    ] * 2
    assert [line["model_sha256"] for line in read_log(log_path)] == [
        single["model_version"],
        *[p["model_version"] for p in batch["predictions"]],
    ]

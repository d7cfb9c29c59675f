"""Broken model files are listed with a reason, give a clear 5xx, and harm no other model."""

import os

import joblib
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from support.api import ADELIE, read_log
from support.models import penguins

from penguin_contract import FEATURES, SPECIES, TARGET


def _corrupt(store, name):
    path = store.model_path(name)
    path.write_bytes(b"this is not a pickle" + path.read_bytes()[:100])


def _truncate(store, name):
    path = store.model_path(name)
    path.write_bytes(path.read_bytes()[:1000])


def _not_a_pipeline(store, name):
    joblib.dump({"weights": [1, 2, 3]}, store.model_path(name))


def _other_sklearn_version(store, name):
    """The real pickle, with its recorded scikit-learn version changed (same length)."""
    path = store.model_path(name)
    data = path.read_bytes()
    assert b"1.9.1" in data
    path.write_bytes(data.replace(b"1.9.1", b"0.9.1"))


def _fitted_on(X, y):
    return make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0)).fit(X, y)


def _species_names_as_labels(store, name):
    """A student's pipeline trained on 'Adelie', 'Gentoo'... instead of the species ids."""
    frame = penguins()
    pipeline = _fitted_on(frame[list(FEATURES)].to_numpy(), frame[TARGET].map(SPECIES))
    joblib.dump(pipeline, store.model_path(name))


def _columns_in_another_order(store, name):
    """Fitted on a DataFrame whose columns are not in the contract's order."""
    frame = penguins()
    shuffled = list(reversed(FEATURES))
    joblib.dump(_fitted_on(frame[shuffled], frame[TARGET]), store.model_path(name))


def _unknown_species_code(store, name):
    frame = penguins()
    joblib.dump(
        _fitted_on(frame[list(FEATURES)].to_numpy(), frame[TARGET].replace(3, 7)),
        store.model_path(name),
    )


@pytest.mark.parametrize(
    ("damage", "status", "reason"),
    [
        (_corrupt, "error", "cannot be unpickled"),
        (_truncate, "error", "cannot be unpickled"),
        (_not_a_pipeline, "error", "not a scikit-learn Pipeline"),
        (_other_sklearn_version, "incompatible", "0.9.1"),
        (_species_names_as_labels, "error", "are not species codes"),
        (_columns_in_another_order, "error", "not in the contract's order"),
        (_unknown_species_code, "error", "unknown species codes [7]"),
    ],
)
def test_broken_model_is_listed_and_fails_clearly_while_others_work(
    client, model_store, log_path, damage, status, reason
):
    damage(model_store, "randomforest")

    listed = {m["name"]: m for m in client.get("/models").json()["available_models"]}
    response = client.post("/classify/randomforest", json=ADELIE)

    assert listed["randomforest"]["status"] == status
    assert reason in listed["randomforest"]["reason"]
    assert response.status_code == 503
    assert "randomforest" in response.json()["detail"]
    assert reason in response.json()["detail"]
    assert client.get("/models/randomforest").json()["status"] == status
    for healthy in ("gradientboosting", "svm"):
        assert listed[healthy]["status"] == "ok"
        assert client.post(f"/classify/{healthy}", json=ADELIE).status_code == 200
    assert [line["model"] for line in read_log(log_path)] == ["gradientboosting", "svm"]


def test_best_skips_a_broken_best_model(client, model_store):
    _corrupt(model_store, "randomforest")  # the highest test_f1 on this split

    response = client.post("/classify/best", json=ADELIE)

    assert response.status_code == 200
    assert response.json()["model"] != "randomforest"


def test_a_repaired_model_is_served_again(client, model_store):
    good = model_store.model_path("svm").read_bytes()
    _corrupt(model_store, "svm")
    assert client.post("/classify/svm", json=ADELIE).status_code == 503

    model_store.model_path("svm").write_bytes(good)

    assert client.post("/classify/svm", json=ADELIE).status_code == 200


def test_an_unreadable_model_file_is_listed_as_an_error(client, model_store, monkeypatch):
    """Root ignores file modes, so the refused read is simulated."""
    unreadable = str(model_store.model_path("svm"))
    real_open = os.open

    def refusing_open(path, *args, **kwargs):
        if str(path) == unreadable:
            raise PermissionError(13, "Permission denied", unreadable)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("os.open", refusing_open)
    listed = {m["name"]: m for m in client.get("/models").json()["available_models"]}
    response = client.post("/classify/svm", json=ADELIE)

    assert listed["svm"]["status"] == "error"
    assert "cannot be read (Permission denied)" in listed["svm"]["reason"]
    assert response.status_code == 503
    assert response.json()["code"] == "model_unavailable"
    assert listed["randomforest"]["status"] == "ok"

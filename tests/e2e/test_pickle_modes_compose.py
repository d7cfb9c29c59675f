"""End to end: both ALLOW_PICKLE modes of the API in the Compose stack.

Default (ALLOW_PICKLE=true, the session stack): the notebook's models answer from their ONNX
twins; a model skl2onnx cannot convert is unpickled and served by scikit-learn; and a pickle
whose unpickling runs code does run it (a witness file appears in the api container), which is
why a shared server should run the other mode. ALLOW_PICKLE=false: only the api service is
recreated with it; twins still answer, every model without a usable twin is an error, the
planted pickle runs nothing. The api service is recreated with the default afterwards.

The tests that train or plant models remove those files when they end.
"""

import dataclasses
import time
from collections.abc import Iterator

import pytest
from support.api import ADELIE
from support.compose import UP_TIMEOUT_S, ComposeStack

from penguin_contract import model_filename, model_name_from_filename, onnx_filename

pytestmark = pytest.mark.e2e

NOTEBOOK_MODELS = {"randomforest", "svm", "gradientboosting"}
UNCONVERTIBLE = "e2e_centroid"  # a scikit-learn estimator skl2onnx has no converter for
NOTEBOOK_CLASS = "e2e_custom"  # an estimator class defined only in the student's code
PLANTED = "e2e_planted"
WITNESS = "/tmp/pwned"
MODELS_DIR = "/app/models"
LISTING_TIMEOUT_S = 60

TRAIN_IN_JUPYTER = f'''
import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestCentroid
from sklearn.preprocessing import StandardScaler

from penguin_contract import FEATURES, TARGET
from utils.model_trainer import ModelTrainer


class TinyCentroids(ClassifierMixin, BaseEstimator):
    """The nearest class mean, written by hand as a student would in a notebook cell."""

    def fit(self, X, y):
        X, y = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(y)
        self.centroids_ = np.array([X[y == label].mean(axis=0) for label in self.classes_])
        return self

    def predict(self, X):
        distances = ((np.asarray(X)[:, None, :] - self.centroids_) ** 2).sum(axis=2)
        return self.classes_[distances.argmin(axis=1)]


penguins = pd.read_csv(os.environ["DATA_PATH"])
split = train_test_split(
    penguins[list(FEATURES)], penguins[TARGET], test_size=0.2, random_state=42,
    stratify=penguins[TARGET],
)
trainer = ModelTrainer()
estimators = {{{UNCONVERTIBLE!r}: NearestCentroid(), {NOTEBOOK_CLASS!r}: TinyCentroids()}}
for name, estimator in estimators.items():
    saved = trainer.train_and_save(name, estimator, *split, scaler=StandardScaler())
    print(f"{{name}} onnx={{saved['onnx']}} reason={{saved['onnx_reason']}}")
'''

# Unpickling this object calls open(WITNESS, "w"): the file appears where it is unpickled.
PLANT_PICKLE = f"""
import os
import pickle


class Witness:
    def __reduce__(self):
        return (open, ({WITNESS!r}, "w"))


temporary = "{MODELS_DIR}/.{PLANTED}.tmp"
with open(temporary, "wb") as file:
    pickle.dump(Witness(), file)
os.replace(temporary, "{MODELS_DIR}/{model_filename(PLANTED)}")
"""


def listed_models(stack: ComposeStack) -> dict[str, dict]:
    with stack.api() as api:
        response = api.get("/models")
    assert response.status_code == 200, response.text
    return {model["name"]: model for model in response.json()["available_models"]}


def wait_until_listed(stack: ComposeStack, names: set[str]) -> dict[str, dict]:
    """GET /models until it lists every name (the API looks at the files on every request)."""
    deadline = time.monotonic() + LISTING_TIMEOUT_S
    models = listed_models(stack)
    while not names <= set(models) and time.monotonic() < deadline:
        time.sleep(0.5)
        models = listed_models(stack)
    assert names <= set(models), f"{names - set(models)} not listed: {sorted(models)}"
    return models


def witness_exists(stack: ComposeStack) -> bool:
    return stack.exec("api", "test", "-e", WITNESS, check=False).returncode == 0


def remove_models(stack: ComposeStack, *names: str) -> None:
    paths = [f"{MODELS_DIR}/{model_filename(name)}" for name in names]
    paths += [f"{MODELS_DIR}/{onnx_filename(name)}" for name in names]
    stack.exec("jupyter", "rm", "-f", *paths)


def twins_in_the_volume(stack: ComposeStack) -> set[str]:
    """Names of the models that have an ONNX twin file in shared_models."""
    filenames = stack.exec("api", "ls", MODELS_DIR).stdout.split()
    names = {model_name_from_filename(filename) for filename in filenames} - {None}
    return {name for name in names if onnx_filename(name) in filenames}


def classify(stack: ComposeStack, model: str) -> tuple[int, dict]:
    with stack.api() as api:
        response = api.post(f"/classify/{model}", json=ADELIE)
    return response.status_code, response.json()


def api_environment(stack: ComposeStack) -> list[str]:
    return stack.inspect("api")["Config"]["Env"]


def recreate_api(stack: ComposeStack) -> None:
    """Recreate only the api container with ``stack``'s environment; wait until healthy."""
    stack.compose("up", "-d", "--no-deps", "--force-recreate", "api", timeout=UP_TIMEOUT_S)
    stack.wait_until_healthy()


@pytest.fixture(scope="module")
def trained_in_jupyter(stack: ComposeStack) -> Iterator[str]:
    """Both extra models trained with ModelTrainer inside the jupyter container."""
    run = stack.exec("jupyter", "python", "-c", TRAIN_IN_JUPYTER)
    try:
        yield run.stdout
    finally:
        remove_models(stack, UNCONVERTIBLE, NOTEBOOK_CLASS)


@pytest.fixture
def planted_pickle(stack: ComposeStack) -> Iterator[str]:
    stack.exec("jupyter", "python", "-c", PLANT_PICKLE)
    try:
        yield PLANTED
    finally:
        remove_models(stack, PLANTED)
        stack.exec("api", "rm", "-f", WITNESS)


# --- ALLOW_PICKLE=true (the default) -----------------------------------------------------


def test_the_default_mode_is_allow_pickle_true(stack: ComposeStack) -> None:
    assert "ALLOW_PICKLE=true" in api_environment(stack)


def test_notebook_models_answer_from_their_onnx_twins(stack: ComposeStack) -> None:
    models = listed_models(stack)

    assert twins_in_the_volume(stack) >= NOTEBOOK_MODELS
    for name in NOTEBOOK_MODELS:
        assert (models[name]["status"], models[name]["runtime"]) == ("ok", "onnx"), models[name]
        assert models[name]["runtime_reason"] is None
        status, prediction = classify(stack, name)
        assert (status, prediction["runtime"]) == (200, "onnx"), prediction


def test_a_model_skl2onnx_cannot_convert_is_served_by_scikit_learn(
    stack: ComposeStack, trained_in_jupyter: str
) -> None:
    assert f"{UNCONVERTIBLE} onnx=False" in trained_in_jupyter
    model = wait_until_listed(stack, {UNCONVERTIBLE})[UNCONVERTIBLE]

    assert (model["status"], model["runtime"]) == ("ok", "sklearn"), model
    assert "no ONNX twin" in model["runtime_reason"]
    assert "NearestCentroid" in model["runtime_reason"]  # the trainer's onnx_reason
    status, prediction = classify(stack, UNCONVERTIBLE)
    assert status == 200, prediction
    assert (prediction["runtime"], prediction["species_name"]) == ("sklearn", "Adelie")


def test_a_class_defined_only_in_the_notebook_is_an_error_that_says_why(
    stack: ComposeStack, trained_in_jupyter: str
) -> None:
    """The API cannot import a class that exists only in the student's kernel."""
    assert f"{NOTEBOOK_CLASS} onnx=False" in trained_in_jupyter
    models = wait_until_listed(stack, {NOTEBOOK_CLASS})

    assert models[NOTEBOOK_CLASS]["status"] == "error"
    assert "TinyCentroids" in models[NOTEBOOK_CLASS]["reason"]
    for name in NOTEBOOK_MODELS:
        assert models[name]["status"] == "ok"


def test_with_pickles_allowed_a_planted_pickle_runs_its_code(
    stack: ComposeStack, planted_pickle: str
) -> None:
    """Proves the planted pickle really runs code, so its absence below means something."""
    assert not witness_exists(stack)

    planted = wait_until_listed(stack, {planted_pickle})[planted_pickle]

    assert witness_exists(stack)
    assert planted["status"] == "error"
    assert "not a scikit-learn Pipeline" in planted["reason"]


# --- ALLOW_PICKLE=false ------------------------------------------------------------------


@pytest.fixture(scope="class")
def pickle_free(stack: ComposeStack) -> Iterator[ComposeStack]:
    """The api service recreated with ALLOW_PICKLE=false; the default is restored after."""
    refusing = dataclasses.replace(stack, env={**stack.env, "ALLOW_PICKLE": "false"})
    try:
        recreate_api(refusing)
        yield stack
    finally:
        recreate_api(stack)
        assert "ALLOW_PICKLE=true" in api_environment(stack)


class TestWithoutPickles:
    def test_the_api_runs_with_allow_pickle_false(self, pickle_free: ComposeStack) -> None:
        assert "ALLOW_PICKLE=false" in api_environment(pickle_free)

    def test_every_twin_answers_and_every_other_model_is_an_error(
        self, pickle_free: ComposeStack, trained_in_jupyter: str
    ) -> None:
        models = wait_until_listed(pickle_free, {UNCONVERTIBLE, NOTEBOOK_CLASS})
        twins = twins_in_the_volume(pickle_free)

        assert twins >= NOTEBOOK_MODELS
        for name, model in models.items():
            status, answer = classify(pickle_free, name)
            if name in twins:
                assert (model["status"], model["runtime"]) == ("ok", "onnx"), model
                assert model["metrics"]["test_accuracy"] is not None  # from the JSON report
                assert (status, answer["runtime"]) == (200, "onnx"), answer
            else:
                assert model["status"] == "error", model
                assert "ALLOW_PICKLE=false" in model["reason"]
                assert status == 503, answer
        assert UNCONVERTIBLE not in twins

    def test_a_planted_pickle_is_listed_as_an_error_and_runs_nothing(
        self, pickle_free: ComposeStack, planted_pickle: str
    ) -> None:
        assert not witness_exists(pickle_free)

        planted = wait_until_listed(pickle_free, {planted_pickle})[planted_pickle]
        with pickle_free.api() as api:
            detail = api.get(f"/models/{planted_pickle}")
            classified = api.post(f"/classify/{planted_pickle}", json=ADELIE)
            v2_ready = api.get(f"/v2/models/{planted_pickle}/ready")
            ready = api.get("/ready")
            svm = api.post("/classify/svm", json=ADELIE)

        assert planted["status"] == "error"
        assert "ALLOW_PICKLE=false" in planted["reason"]
        assert "ALLOW_PICKLE=false" in detail.json()["reason"]
        assert classified.status_code == 503
        assert (v2_ready.status_code, v2_ready.json()["ready"]) == (400, False)
        assert not witness_exists(pickle_free)
        assert ready.status_code == 200, ready.text
        assert svm.status_code == 200, svm.text
        assert svm.json()["species_name"] == "Adelie"

"""app.fast_predict gives exactly the pipeline's answers, and is used only where it does."""

import joblib
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC, NuSVC
from support.models import penguin_split, penguins

from app import fast_predict
from app.repository import load_model
from penguin_contract import FEATURES


def _rows() -> np.ndarray:
    """Every real bird, plus noisy copies that land in other leaves and regions."""
    real = penguins()[list(FEATURES)].to_numpy(dtype=np.float64)
    noisy = real + np.random.default_rng(0).normal(0, 2, real.shape)
    return np.vstack([real, noisy])


def _fitted(*steps) -> Pipeline:
    X_train, _, y_train, _ = penguin_split()
    return Pipeline([(f"step{index}", step) for index, step in enumerate(steps)]).fit(
        X_train, y_train
    )


def _assert_identical(pipeline: Pipeline) -> None:
    rows = _rows()
    for batch in (rows, rows[:1], rows[200:201]):
        assert np.array_equal(fast_predict.predict(pipeline, batch), pipeline.predict(batch))
        if hasattr(pipeline, "predict_proba"):
            assert np.array_equal(
                fast_predict.predict_proba(pipeline, batch), pipeline.predict_proba(batch)
            )


@pytest.mark.parametrize("name", ["randomforest", "svm", "gradientboosting"])
def test_the_notebook_models_are_identical_to_scikit_learn(trained_models, name):
    pipeline = joblib.load(trained_models.model_path(name))
    assert fast_predict.has_fast_path(pipeline)
    _assert_identical(pipeline)


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param((StandardScaler(), SVC(kernel="linear", C=0.5)), id="linear-svc"),
        pytest.param((StandardScaler(), SVC(kernel="poly", degree=2)), id="poly-svc"),
        pytest.param(
            (StandardScaler(), SVC(probability=True, random_state=0)),
            id="proba-svc",
            marks=pytest.mark.filterwarnings("ignore:The `probability` parameter"),
        ),
        pytest.param((StandardScaler(), NuSVC(nu=0.3)), id="nusvc"),
        pytest.param((MinMaxScaler(), SVC()), id="other-scaler"),
        pytest.param((StandardScaler(with_mean=False), SVC()), id="no-centering"),
        pytest.param(("passthrough", SVC(gamma="auto")), id="unscaled"),
        pytest.param((StandardScaler(), ExtraTreesClassifier(20, random_state=3)), id="extra"),
        pytest.param((RandomForestClassifier(15, max_depth=4, random_state=1),), id="bare-rf"),
    ],
)
def test_other_fast_pipelines_are_identical_to_scikit_learn(steps):
    pipeline = _fitted(*steps)
    assert fast_predict.has_fast_path(pipeline)
    _assert_identical(pipeline)


def test_unrecognised_models_go_through_the_pipeline():
    class TweakedForest(RandomForestClassifier):
        pass

    for final in (KNeighborsClassifier(), TweakedForest(10), SVC(break_ties=True)):
        pipeline = _fitted(StandardScaler(), final)
        assert not fast_predict.has_fast_path(pipeline)
        _assert_identical(pipeline)


def test_load_model_serves_only_a_fast_path_that_agrees(trained_models, monkeypatch):
    path = trained_models.model_path("svm")
    assert load_model("svm", path).fast

    def off_by_one(pipeline, rows):
        return pipeline.predict(rows) % 3 + 1

    monkeypatch.setattr(fast_predict, "predict", off_by_one)
    model = load_model("svm", path)
    assert model.usable and not model.fast
    row = _rows()[:1]
    assert np.array_equal(model.predict(row)[0], model.pipeline.predict(row))


def test_a_fast_path_that_raises_is_not_used(trained_models, monkeypatch):
    def broken(pipeline, rows):
        raise AttributeError("private attribute renamed")

    monkeypatch.setattr(fast_predict, "predict_proba", broken)
    model = load_model("randomforest", trained_models.model_path("randomforest"))
    assert model.usable and not model.fast

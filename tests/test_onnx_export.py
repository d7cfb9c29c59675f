"""The trainer's ONNX twin: written only when it agrees with the pickle, per the contract."""

import contextlib
import hashlib
import io
import json
from pathlib import Path

import joblib
import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import skl2onnx
import sklearn
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from support.models import prescribed_estimators

import utils.model_trainer as model_trainer
from penguin_contract import (
    FEATURES,
    FIELDS,
    ONNX_INPUT_NAME,
    ONNX_LABEL_OUTPUT,
    ONNX_METADATA_KEYS,
    ONNX_PROBABILITIES_OUTPUT,
    TARGET,
    report_json_path,
)
from utils import onnx_export
from utils.model_trainer import ModelTrainer

DATA_PATH = Path(__file__).resolve().parents[1] / "data" / "penguins_v1.csv"
TOLERANCE = 1e-6
NOTEBOOK_MODELS = ["randomforest", "svm", "gradientboosting", "knn"]


class MajorityClassifier(ClassifierMixin, BaseEstimator):
    """A student's own estimator: scikit-learn can use it, skl2onnx has no converter for it."""

    def fit(self, X, y):
        self.classes_, counts = np.unique(y, return_counts=True)
        self.majority_ = self.classes_[counts.argmax()]
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)


def notebook_estimators() -> dict[str, BaseEstimator]:
    """train.ipynb's models, each trained with StandardScaler (knn is its last cell)."""
    return {**prescribed_estimators(), "knn": KNeighborsClassifier(n_neighbors=5)}


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(DATA_PATH)


@pytest.fixture(scope="module")
def birds(penguins) -> np.ndarray:
    """The 333 real birds, as the API hands them to a model."""
    return penguins[list(FEATURES)].to_numpy(dtype=np.float64)


@pytest.fixture(scope="module")
def split(penguins):
    X, y = penguins[list(FEATURES)], penguins[TARGET]
    return train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)


def quietly(function, *args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer prints its reports
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def notebook_trainer(tmp_path_factory, split) -> ModelTrainer:
    """The notebook's four pipelines trained once by the real trainer (read-only)."""
    root = tmp_path_factory.mktemp("notebook-models")
    trainer = ModelTrainer(root / "models", root / "report" / "model_metrics.pkl")
    for name, estimator in notebook_estimators().items():
        quietly(trainer.train_and_save, name, estimator, *split, scaler=StandardScaler())
    return trainer


@pytest.fixture
def trainer(tmp_path: Path) -> ModelTrainer:
    return ModelTrainer(tmp_path / "models", tmp_path / "report" / "model_metrics.pkl")


def session(model: Path | bytes) -> onnxruntime.InferenceSession:
    model_bytes = model.read_bytes() if isinstance(model, Path) else model
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


def run(model: Path | bytes, rows: np.ndarray) -> dict[str, np.ndarray]:
    onnx_session = session(model)
    names = [output.name for output in onnx_session.get_outputs()]
    return dict(zip(names, onnx_session.run(None, {ONNX_INPUT_NAME: rows}), strict=True))


def max_probability_difference(model: Path | bytes, pipeline: Pipeline, rows) -> float:
    probabilities = run(model, rows)[ONNX_PROBABILITIES_OUTPUT].astype(np.float64)
    return float(np.abs(probabilities - pipeline.predict_proba(rows)).max())


def paths(trainer: ModelTrainer, name: str) -> tuple[Path, Path]:
    return trainer.models_dir / f"{name}_model.pkl", trainer.models_dir / f"{name}_model.onnx"


def report_row(trainer: ModelTrainer, name: str) -> pd.Series:
    return trainer.read_report().set_index("model").loc[name]


def json_report_row(trainer: ModelTrainer, name: str) -> dict:
    rows = json.loads(report_json_path(trainer.report_path).read_text())
    return next(row for row in rows if row["model"] == name)


# --- The notebook's pipelines -------------------------------------------------------------


@pytest.mark.parametrize("name", NOTEBOOK_MODELS)
def test_twin_agrees_with_the_pickle_on_every_real_bird(notebook_trainer, birds, name):
    pickle_path, onnx_path = paths(notebook_trainer, name)
    pipeline = joblib.load(pickle_path)

    outputs = run(onnx_path, birds)

    np.testing.assert_array_equal(outputs[ONNX_LABEL_OUTPUT], pipeline.predict(birds))
    if hasattr(pipeline, "predict_proba"):
        assert max_probability_difference(onnx_path, pipeline, birds) <= TOLERANCE


@pytest.mark.parametrize("name", NOTEBOOK_MODELS)
def test_twin_has_the_contract_input_and_outputs(notebook_trainer, name):
    pickle_path, onnx_path = paths(notebook_trainer, name)
    pipeline = joblib.load(pickle_path)
    onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
    onnx_session = session(onnx_path)

    inputs = [(node.name, node.type, node.shape) for node in onnx_session.get_inputs()]
    outputs = {node.name: (node.type, node.shape) for node in onnx_session.get_outputs()}
    assert inputs == [(ONNX_INPUT_NAME, "tensor(double)", [None, len(FEATURES)])]
    assert outputs[ONNX_LABEL_OUTPUT] == ("tensor(int64)", [None])
    if hasattr(pipeline, "predict_proba"):
        assert list(outputs) == [ONNX_LABEL_OUTPUT, ONNX_PROBABILITIES_OUTPUT]
        assert outputs[ONNX_PROBABILITIES_OUTPUT] == ("tensor(float)", [None, 3])
    else:
        assert list(outputs) == [ONNX_LABEL_OUTPUT]


def test_svm_without_probabilities_has_only_a_label_output(notebook_trainer, birds):
    pipeline = joblib.load(paths(notebook_trainer, "svm")[0])

    assert not hasattr(pipeline, "predict_proba")
    assert list(run(paths(notebook_trainer, "svm")[1], birds[:5])) == [ONNX_LABEL_OUTPUT]


@pytest.mark.parametrize("name", NOTEBOOK_MODELS)
def test_twin_metadata_names_the_exact_pickle_bytes_on_disk(notebook_trainer, name):
    pickle_path, onnx_path = paths(notebook_trainer, name)
    pipeline = joblib.load(pickle_path)

    metadata = {prop.key: prop.value for prop in onnx.load(onnx_path).metadata_props}

    assert list(metadata) == list(ONNX_METADATA_KEYS)
    assert metadata["pkl_sha256"] == hashlib.sha256(pickle_path.read_bytes()).hexdigest()
    assert metadata["pkl_sha256"] == report_row(notebook_trainer, name)["sha256"]
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["skl2onnx_version"] == skl2onnx.__version__
    assert json.loads(metadata["feature_names"]) == list(FEATURES)
    assert json.loads(metadata["classes"]) == pipeline.classes_.tolist() == [1, 2, 3]


@pytest.mark.parametrize("name", NOTEBOOK_MODELS)
def test_report_rows_say_the_twin_was_written(notebook_trainer, name):
    row = report_row(notebook_trainer, name)

    assert row["onnx"] and row["onnx_reason"] is None
    assert json_report_row(notebook_trainer, name)["onnx"] is True
    assert json_report_row(notebook_trainer, name)["onnx_reason"] is None


# --- What is not converted, or does not agree, gets no twin -------------------------------


def test_custom_estimator_trains_and_saves_without_a_twin_and_drops_the_stale_one(
    trainer, split, birds, capsys
):
    trainer.train_and_save("student", DecisionTreeClassifier(random_state=0), *split)
    pickle_path, onnx_path = paths(trainer, "student")
    assert onnx_path.exists()

    result = trainer.train_and_save("student", MajorityClassifier(), *split)

    assert not onnx_path.exists()
    assert result["onnx"] is False and result["onnx_path"] is None
    assert result["onnx_reason"].startswith("skl2onnx cannot convert")
    assert "MajorityClassifier" in result["onnx_reason"]
    assert set(joblib.load(pickle_path).predict(birds).tolist()) == {1}  # Adelie, the majority
    row = report_row(trainer, "student")
    assert not row["onnx"] and row["onnx_reason"] == result["onnx_reason"]
    assert json_report_row(trainer, "student")["onnx"] is False
    assert f"(no ONNX twin: {result['onnx_reason']})" in capsys.readouterr().out


def test_stale_twin_is_gone_before_the_new_pickle_is_written(trainer, split, monkeypatch):
    trainer.train_and_save("tree", DecisionTreeClassifier(max_depth=1), *split)
    pickle_path, onnx_path = paths(trainer, "tree")
    twin_present_when_pickle_written = []
    write = model_trainer.atomic_write_bytes

    def spying_write(path, data):
        if Path(path) == pickle_path:
            twin_present_when_pickle_written.append(onnx_path.exists())
        write(path, data)

    monkeypatch.setattr(model_trainer, "atomic_write_bytes", spying_write)
    quietly(trainer.train_and_save, "tree", DecisionTreeClassifier(random_state=0), *split)

    assert twin_present_when_pickle_written == [False]
    metadata = {prop.key: prop.value for prop in onnx.load(onnx_path).metadata_props}
    assert metadata["pkl_sha256"] == hashlib.sha256(pickle_path.read_bytes()).hexdigest()


def skl2onnx_default_graph(pipeline: Pipeline) -> onnx.ModelProto:
    """skl2onnx's own graph of the pipeline with a double input (the scaler, then the trees
    thresholding the scaled values), given the contract's output names."""
    converted = convert_sklearn(
        pipeline,
        initial_types=[(ONNX_INPUT_NAME, DoubleTensorType([None, len(FEATURES)]))],
        options={id(pipeline[-1]): {"zipmap": False}},
    )
    return onnx_export.contract_outputs(converted, len(pipeline.classes_), True)


def test_forest_graph_that_flips_branches_is_rejected(notebook_trainer, birds):
    pipeline = joblib.load(paths(notebook_trainer, "randomforest")[0])
    default_graph = skl2onnx_default_graph(pipeline).SerializeToString()
    assert max_probability_difference(default_graph, pipeline, birds) > TOLERANCE

    reason = onnx_export.disagreement(default_graph, pipeline, birds)

    assert reason is not None
    assert reason.startswith("probabilities differ by up to ")
    assert reason.endswith(f"of {len(birds)} rows (tolerance 1e-06)")


def test_trainer_writes_no_twin_that_disagrees(trainer, split, monkeypatch):
    forest = prescribed_estimators()["randomforest"]
    trainer.train_and_save("randomforest", forest, *split, scaler=StandardScaler())
    pickle_path, onnx_path = paths(trainer, "randomforest")
    assert onnx_path.exists()
    # Both graphs the export tries are now skl2onnx's default one, which flips branches.
    monkeypatch.setattr(onnx_export, "estimator_in_float", skl2onnx_default_graph)
    monkeypatch.setattr(onnx_export, "estimator_in_double", skl2onnx_default_graph)

    result = quietly(
        trainer.train_and_save, "randomforest", forest, *split, scaler=StandardScaler()
    )

    assert not onnx_path.exists()
    assert result["onnx"] is False
    assert result["onnx_reason"].startswith("probabilities differ by up to ")
    assert report_row(trainer, "randomforest")["onnx_reason"] == result["onnx_reason"]
    assert pickle_path.exists()


def test_twin_of_another_model_is_rejected_for_its_labels(notebook_trainer, birds):
    forest = joblib.load(paths(notebook_trainer, "randomforest")[0])
    stump = Pipeline([("model", DecisionTreeClassifier(max_depth=1))]).fit(
        birds, forest.predict(birds)
    )
    wrong = int(np.sum(stump.predict(birds) != forest.predict(birds)))
    assert wrong > 0

    reason = onnx_export.disagreement(
        paths(notebook_trainer, "randomforest")[1].read_bytes(), stump, birds
    )

    assert reason == f"labels differ on {wrong} of {len(birds)} rows"


def test_graph_with_a_float_input_is_rejected(notebook_trainer, birds):
    pipeline = joblib.load(paths(notebook_trainer, "knn")[0])
    float_graph = convert_sklearn(
        pipeline,
        initial_types=[(ONNX_INPUT_NAME, FloatTensorType([None, len(FEATURES)]))],
        options={"zipmap": False},
    ).SerializeToString()

    reason = onnx_export.disagreement(float_graph, pipeline, birds)

    assert reason is not None and "not the contract's" in reason


def test_estimator_in_double_is_used_when_the_float_graph_disagrees(trainer, split, birds):
    X_train, X_test, y_train, _ = split
    unscaled = Pipeline([("model", GaussianNB())])
    unscaled.fit(model_trainer.feature_matrix(X_train), y_train)
    rows = onnx_export.proof_rows(
        model_trainer.feature_matrix(X_train), model_trainer.feature_matrix(X_test)
    )
    float_graph = onnx_export.estimator_in_float(unscaled).SerializeToString()
    assert onnx_export.disagreement(float_graph, unscaled, rows) is not None

    result = quietly(trainer.train_and_save, "bayes", GaussianNB(), *split)

    assert result["onnx"] is True
    pipeline = joblib.load(result["model_path"])
    onnx_path = Path(result["onnx_path"])
    np.testing.assert_array_equal(run(onnx_path, birds)[ONNX_LABEL_OUTPUT], pipeline.predict(birds))
    assert max_probability_difference(onnx_path, pipeline, birds) <= TOLERANCE


# --- The proof rows ----------------------------------------------------------------------


def test_proof_rows_are_the_data_and_seeded_noisy_copies_within_the_contract(birds):
    X_train, X_test = birds[:200], birds[200:]

    rows = onnx_export.proof_rows(X_train, X_test)

    copies = rows.reshape(onnx_export.NOISY_COPIES + 1, len(birds), len(FEATURES))
    np.testing.assert_array_equal(copies[0], birds)
    np.testing.assert_array_equal(rows, onnx_export.proof_rows(X_train, X_test))
    for column, field in enumerate(FIELDS):
        values = copies[1:, :, column]
        assert values.min() >= field.minimum and values.max() <= field.maximum
        if field.kind == "number":
            assert (values != birds[:, column]).mean() > 0.99
        else:  # codes and years stay valid integers
            assert (values == birds[:, column]).all()

"""ModelTrainer: real estimators, real files in temporary directories."""

import hashlib
import json
import multiprocessing
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import sklearn
from PIL import Image
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.validation import check_is_fitted

from penguin_contract import (
    FEATURES,
    METRIC_COLUMNS,
    REPORT_COLUMNS,
    SPECIES,
    TARGET,
    report_json_path,
)
from utils.model_trainer import ModelTrainer, ReportError

DATA_PATH = Path(__file__).resolve().parents[1] / "data" / "penguins_v1.csv"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_split():
    penguins = pd.read_csv(DATA_PATH)
    X, y = penguins[list(FEATURES)], penguins[TARGET]
    return train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    return pd.read_csv(DATA_PATH)


@pytest.fixture(scope="module")
def split():
    return load_split()


@pytest.fixture
def trainer(tmp_path: Path) -> ModelTrainer:
    return ModelTrainer(tmp_path / "models", tmp_path / "report" / "model_metrics.pkl")


def train_tree(trainer: ModelTrainer, split, name: str = "tree", max_depth=None, **kwargs):
    estimator = DecisionTreeClassifier(max_depth=max_depth, random_state=0)
    return trainer.train_and_save(name, estimator, *split, **kwargs)


def files_in(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()}


def model_files(*names: str) -> set[str]:
    """A pickle and its ONNX twin per name (every model these tests train gets one), and the
    folder of every trained version (tests/test_model_versions.py)."""
    served = {f"{name}_model.{extension}" for name in names for extension in ("pkl", "onnx")}
    return served | {"versions"}


def report_rows_as_json(report: pd.DataFrame) -> list[dict]:
    """The pickled report's rows as JSON would hold them: NaN as None, arrays as lists."""

    def native(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return [native(item) for item in value]
        if isinstance(value, float) and np.isnan(value):
            return None
        return value.item() if isinstance(value, np.generic) else value

    return [{key: native(value) for key, value in row.items()} for row in report.to_dict("records")]


def test_pipeline_has_scaler_then_model(trainer, split):
    estimator, scaler = LogisticRegression(max_iter=1000), StandardScaler()
    result = trainer.train_and_save("logreg", estimator, *split, scaler=scaler)

    pipeline = joblib.load(result["model_path"])
    assert isinstance(pipeline, Pipeline)
    assert [step for step, _ in pipeline.steps] == ["scaler", "model"]
    assert isinstance(pipeline.named_steps["scaler"], StandardScaler)
    assert isinstance(pipeline.named_steps["model"], LogisticRegression)
    check_is_fitted(pipeline)


def test_pipeline_without_scaler_has_only_the_model(trainer, split):
    pipeline = joblib.load(train_tree(trainer, split)["model_path"])

    assert [step for step, _ in pipeline.steps] == ["model"]
    assert isinstance(pipeline.named_steps["model"], DecisionTreeClassifier)


def test_caller_estimator_and_scaler_are_not_fitted(trainer, split):
    estimator, scaler = LogisticRegression(max_iter=1000), StandardScaler()
    trainer.train_and_save("logreg", estimator, *split, scaler=scaler)

    for original in (estimator, scaler):
        with pytest.raises(NotFittedError):
            check_is_fitted(original)


def test_metrics_are_the_contract_columns_within_zero_and_one(trainer, split):
    result = train_tree(trainer, split)

    for column in METRIC_COLUMNS:
        assert isinstance(result[column], float)
        assert 0.0 <= result[column] <= 1.0
    assert result["train_accuracy"] == 1.0  # an unbounded tree memorises its training set
    assert result["test_accuracy"] >= 0.9


def test_report_row_holds_the_returned_metrics(trainer, split):
    result = train_tree(trainer, split)

    report = pd.read_pickle(trainer.report_path)
    assert list(report.columns) == list(REPORT_COLUMNS)
    (row,) = report.to_dict("records")
    assert row["model"] == "tree"
    assert {column: row[column] for column in METRIC_COLUMNS} == {
        column: result[column] for column in METRIC_COLUMNS
    }


def test_retraining_replaces_the_row_and_keeps_the_others(trainer, split):
    train_tree(trainer, split, name="other")
    stump = train_tree(trainer, split, max_depth=1)
    full = train_tree(trainer, split, name="TREE")  # same model: names are case-insensitive

    report = pd.read_pickle(trainer.report_path)
    assert report["model"].tolist() == ["other", "tree"]
    tree_row = report.set_index("model").loc["tree"]
    assert stump["test_accuracy"] < full["test_accuracy"]
    assert tree_row["test_accuracy"] == full["test_accuracy"]
    assert json.loads(tree_row["params"])["max_depth"] is None
    assert files_in(trainer.models_dir) == model_files("other", "tree")


def test_report_rows_are_sorted_by_model_name(trainer, split):
    for name in ("zeta", "alpha", "mid"):
        train_tree(trainer, split, name=name)

    assert pd.read_pickle(trainer.report_path)["model"].tolist() == ["alpha", "mid", "zeta"]


def test_no_temporary_files_are_left_behind(trainer, split):
    train_tree(trainer, split, name="a")
    train_tree(trainer, split, name="b")
    train_tree(trainer, split, name="a")

    assert files_in(trainer.models_dir) == model_files("a", "b")
    assert files_in(trainer.report_dir) == {
        "model_metrics.pkl",
        "model_metrics.json",
        "model_metrics.pkl.lock",
        "a_confusion_matrix.png",
        "b_confusion_matrix.png",
        "a_history.jsonl",
        "b_history.jsonl",
    }
    assert files_in(trainer.models_dir / "versions") == {"a", "b"}


def train_several(models_dir: str, report_path: str, names: list[str], start) -> None:
    """Child process: wait for the others, then train one small tree per name."""
    split = load_split()
    trainer = ModelTrainer(models_dir, report_path)
    start.wait(timeout=60)
    for depth, name in enumerate(names, start=1):
        trainer.train_and_save(name, DecisionTreeClassifier(max_depth=depth), *split)


def test_processes_training_at_once_lose_no_report_row(tmp_path):
    models_dir, report_path = tmp_path / "models", tmp_path / "report" / "model_metrics.pkl"
    names_per_process = [[f"p{process}m{model}" for model in range(4)] for process in range(4)]
    # fork: the children start at once with everything imported (spawn re-imports scikit-learn,
    # pandas and seaborn in each child, which takes seconds per process on a busy machine).
    context = multiprocessing.get_context("fork")
    start = context.Barrier(len(names_per_process))
    processes = [
        context.Process(target=train_several, args=(models_dir, report_path, names, start))
        for names in names_per_process
    ]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()

    assert [process.exitcode for process in processes] == [0] * len(processes)
    every_name = sorted(name for names in names_per_process for name in names)
    report = pd.read_pickle(report_path)
    assert report["model"].tolist() == every_name
    assert json.loads(report_json_path(report_path).read_text()) == report_rows_as_json(report)
    assert files_in(models_dir) == model_files(*every_name)


@pytest.mark.parametrize(
    "bad_name", ["../x", "a/b", "Best", "best", "", "   ", "x" * 65, "pingüino", "a.b", "-x"]
)
def test_bad_names_are_rejected_before_anything_is_written(trainer, split, bad_name):
    with pytest.raises(ValueError, match=r"model name|reserved"):
        train_tree(trainer, split, name=bad_name)

    assert files_in(trainer.models_dir) == set()
    assert files_in(trainer.report_dir) == set()


def test_longest_allowed_name_is_accepted(trainer, split):
    name = "m" * 64
    assert train_tree(trainer, split, name=name)["model"] == name


def test_confusion_matrix_is_a_valid_png(trainer, split):
    result = train_tree(trainer, split)

    png_path = Path(result["confusion_matrix_path"])
    assert png_path == trainer.report_dir / "tree_confusion_matrix.png"
    assert png_path.read_bytes().startswith(PNG_SIGNATURE)
    with Image.open(png_path) as image:
        image.verify()
        assert image.format == "PNG"
        assert min(image.size) >= 200


def test_training_leaves_no_pyplot_figure_and_emits_no_warning(trainer, split):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_tree(trainer, split)

    assert plt.get_fignums() == []


def test_metadata_describes_the_saved_pickle(trainer, split):
    before = datetime.now(UTC).replace(microsecond=0)
    result = train_tree(trainer, split, max_depth=4)

    row = pd.read_pickle(trainer.report_path).set_index("model").loc["tree"]
    pickle_bytes = Path(result["model_path"]).read_bytes()
    assert row["sha256"] == result["sha256"] == hashlib.sha256(pickle_bytes).hexdigest()
    assert row["sklearn_version"] == sklearn.__version__
    assert list(row["feature_names"]) == list(FEATURES)
    assert list(row["classes"]) == [1, 2, 3]
    assert row["estimator"] == "DecisionTreeClassifier"
    assert json.loads(row["params"])["max_depth"] == 4
    assert row["onnx"] and result["onnx"] is True
    assert row["onnx_reason"] is None and result["onnx_reason"] is None
    assert result["onnx_path"] == str(trainer.models_dir / "tree_model.onnx")
    trained_at = datetime.fromisoformat(row["trained_at"])
    assert trained_at.utcoffset() == timedelta(0)
    assert before <= trained_at <= datetime.now(UTC)


def first_row_of(penguins: pd.DataFrame, species: int) -> np.ndarray:
    row = penguins[penguins[TARGET] == species].iloc[0]
    return row[list(FEATURES)].to_numpy(dtype=np.float64).reshape(1, -1)


def test_reloaded_pipeline_names_real_birds_from_numpy_rows(trainer, split, penguins):
    result = trainer.train_and_save(
        "logreg", LogisticRegression(max_iter=1000), *split, scaler=StandardScaler()
    )

    pipeline = joblib.load(result["model_path"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" warning
        for species in SPECIES:
            assert pipeline.predict(first_row_of(penguins, species)).tolist() == [species]


def test_columns_are_put_in_contract_order_before_fitting(trainer, split, penguins):
    X_train, X_test, y_train, y_test = split
    shuffled = list(reversed(FEATURES))
    result = trainer.train_and_save(
        "logreg",
        LogisticRegression(max_iter=1000),
        X_train[shuffled].assign(note="ignored"),
        X_test[shuffled],
        y_train,
        y_test,
        scaler=StandardScaler(),
    )

    pipeline = joblib.load(result["model_path"])
    assert result["test_accuracy"] >= 0.95
    assert pipeline.predict(first_row_of(penguins, 3)).tolist() == [3]


def test_numpy_arrays_in_contract_order_are_accepted(trainer, split):
    X_train, X_test, y_train, y_test = split
    result = trainer.train_and_save(
        "tree",
        DecisionTreeClassifier(random_state=0),
        X_train.to_numpy(),
        X_test.to_numpy(),
        y_train.to_numpy(),
        y_test.to_numpy(),
    )

    assert result["test_accuracy"] >= 0.9


def test_missing_feature_column_is_a_clear_error(trainer, split):
    X_train, X_test, y_train, y_test = split
    with pytest.raises(ValueError, match="body_mass_g"):
        trainer.train_and_save(
            "tree", DecisionTreeClassifier(), X_train.drop(columns="body_mass_g"), X_test,
            y_train, y_test,
        )  # fmt: skip
    assert files_in(trainer.models_dir) == set()


def test_array_with_wrong_column_count_is_a_clear_error(trainer, split):
    X_train, X_test, y_train, y_test = split
    with pytest.raises(ValueError, match="7 columns"):
        trainer.train_and_save(
            "tree", DecisionTreeClassifier(), X_train.to_numpy()[:, :6], X_test, y_train, y_test
        )


def test_missing_values_are_a_clear_error(trainer, split):
    X_train, X_test, y_train, y_test = split
    with_gap = X_train.copy()
    with_gap.iloc[0, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trainer.train_and_save("tree", DecisionTreeClassifier(), with_gap, X_test, y_train, y_test)


def test_species_names_as_labels_are_a_clear_error(trainer, split):
    X_train, X_test, y_train, y_test = split
    with pytest.raises(ValueError, match="species codes"):
        trainer.train_and_save(
            "tree", DecisionTreeClassifier(), X_train, X_test, y_train.map(SPECIES), y_test
        )


def test_unreadable_report_is_kept_and_nothing_is_written(trainer, split):
    garbage = b"not a pickle"
    trainer.report_path.write_bytes(garbage)

    with pytest.raises(ReportError, match="left untouched"):
        train_tree(trainer, split)

    assert trainer.report_path.read_bytes() == garbage
    assert files_in(trainer.models_dir) == set()


def test_report_that_is_not_a_dataframe_is_refused(trainer, split):
    pd.to_pickle({"model": ["x"]}, trainer.report_path)

    with pytest.raises(ReportError, match="not a model report"):
        train_tree(trainer, split)


def test_rows_of_an_older_report_are_kept(trainer, split):
    older = pd.DataFrame([{"model": "legacy", "test_accuracy": 0.5, "notes": "kept"}])
    older.to_pickle(trainer.report_path)

    train_tree(trainer, split)

    report = pd.read_pickle(trainer.report_path).set_index("model")
    assert report.index.tolist() == ["legacy", "tree"]
    assert report.loc["legacy", "test_accuracy"] == 0.5
    assert report.loc["legacy", "notes"] == "kept"
    legacy, tree = json.loads(report_json_path(trainer.report_path).read_text())
    assert legacy["notes"] == "kept"
    assert legacy["test_f1"] is None  # NaN in the DataFrame: null, not an invalid NaN token
    assert tree["onnx"] is True


def test_json_report_holds_the_pickled_report_rows(trainer, split):
    train_tree(trainer, split, name="b")
    trainer.train_and_save("a", LogisticRegression(max_iter=1000), *split, scaler=StandardScaler())
    train_tree(trainer, split, name="b", max_depth=2)

    json_path = report_json_path(trainer.report_path)
    assert json_path == trainer.report_dir / "model_metrics.json"
    rows = json.loads(json_path.read_text())
    report = pd.read_pickle(trainer.report_path)
    assert rows == report_rows_as_json(report)
    assert [row["model"] for row in rows] == ["a", "b"]
    assert all(list(row) == list(REPORT_COLUMNS) for row in rows)
    assert json.loads(rows[1]["params"])["max_depth"] == 2  # params stays a JSON string


def test_printed_line_names_the_pickle_and_its_twin(trainer, split, capsys):
    result = train_tree(trainer, split)

    assert (
        f"Saved {result['model_path']}, its ONNX twin and its row in {trainer.report_path}"
        in capsys.readouterr().out
    )


def test_directories_default_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "env-models"))
    monkeypatch.setenv("REPORT_PATH", str(tmp_path / "env-report" / "metrics.pkl"))

    trainer = ModelTrainer()

    assert trainer.models_dir == tmp_path / "env-models"
    assert trainer.report_path == tmp_path / "env-report" / "metrics.pkl"
    assert trainer.models_dir.is_dir()
    assert trainer.report_path.parent.is_dir()


def test_explicit_directories_win_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "env-models"))

    trainer = ModelTrainer(tmp_path / "models", tmp_path / "report.pkl")

    assert trainer.models_dir == tmp_path / "models"
    assert not (tmp_path / "env-models").exists()


def test_the_row_keeps_the_per_class_report_of_the_test_split(tmp_path, split):
    from sklearn.metrics import precision_recall_fscore_support

    trainer = ModelTrainer(models_dir=tmp_path / "m", report_path=tmp_path / "r" / "report.pkl")
    X_test, y_test = split[1], split[3]
    result = trainer.train_and_save("tree", DecisionTreeClassifier(max_depth=2), *split)

    per_class = json.loads(result["per_class"])
    y_pred = joblib.load(result["model_path"]).predict(X_test)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_test, y_pred, labels=list(SPECIES), zero_division=0
    )
    assert list(per_class) == list(SPECIES.values())
    for index, name in enumerate(SPECIES.values()):
        assert per_class[name] == {
            "precision": precision[index],
            "recall": recall[index],
            "f1": f1[index],
            "support": support[index],
        }

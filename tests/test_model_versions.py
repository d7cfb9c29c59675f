"""Model lifecycle (issue 20) with real training: versions, the promotion rule, rollback,
keep_versions, concurrent trainings, and what the API answers after a rollback."""

import hashlib
import json
import multiprocessing
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
from support.models import penguin_split, penguins

from app.core.config import Settings
from app.main import create_app
from penguin_contract import FEATURES, TARGET, report_json_path
from utils.model_trainer import ModelTrainer

NAME = "tree"


@pytest.fixture(scope="module")
def split():
    return penguin_split()


@pytest.fixture
def trainer(tmp_path: Path) -> ModelTrainer:
    return ModelTrainer(tmp_path / "models", tmp_path / "report" / "model_metrics.pkl")


def train(trainer: ModelTrainer, split, depth: int, promote: str = "always", name: str = NAME):
    estimator = DecisionTreeClassifier(max_depth=depth, random_state=0)
    return trainer.train_and_save(name, estimator, *split, promote=promote)


def served_files(trainer: ModelTrainer, name: str = NAME) -> dict[str, bytes]:
    """Every file that serves or describes the served model, by name."""
    paths = [
        trainer.models_dir / f"{name}_model.pkl",
        trainer.models_dir / f"{name}_model.onnx",
        trainer.report_dir / f"{name}_confusion_matrix.png",
        trainer.report_path,
        report_json_path(trainer.report_path),
    ]
    return {path.name: path.read_bytes() for path in paths}


def served_sha(trainer: ModelTrainer, name: str = NAME) -> str:
    return hashlib.sha256((trainer.models_dir / f"{name}_model.pkl").read_bytes()).hexdigest()


def report_row(trainer: ModelTrainer, name: str = NAME) -> dict:
    rows = json.loads(report_json_path(trainer.report_path).read_text())
    return next(row for row in rows if row["model"] == name)


def test_every_training_is_kept_as_a_version_named_by_its_sha256(trainer, split):
    result = train(trainer, split, depth=3)

    folder = trainer.models_dir / "versions" / NAME / result["version"]
    pickle = (folder / f"{NAME}_model.pkl").read_bytes()
    assert hashlib.sha256(pickle).hexdigest() == result["version"] == result["sha256"]
    assert pickle == (trainer.models_dir / f"{NAME}_model.pkl").read_bytes()
    assert json.loads((folder / "row.json").read_text()) == report_row(trainer)
    assert (folder / f"{NAME}_model.onnx").read_bytes() == (
        trainer.models_dir / f"{NAME}_model.onnx"
    ).read_bytes()


def test_a_worse_candidate_is_rejected_and_the_served_files_stay_byte_for_byte(trainer, split):
    good = train(trainer, split, depth=4)
    before = served_files(trainer)

    worse = train(trainer, split, depth=1, promote="if_better")

    assert worse["test_f1"] < good["test_f1"]
    assert worse["decision"] == "rejected"
    assert served_files(trainer) == before
    candidate = trainer.models_dir / "versions" / NAME / worse["version"] / f"{NAME}_model.pkl"
    assert hashlib.sha256(candidate.read_bytes()).hexdigest() == worse["version"]
    newest = trainer.history(NAME)[0]
    assert newest["decision"] == "rejected" and newest["version"] == worse["version"]
    assert newest["previous_version"] == good["version"]
    assert newest["previous_metrics"]["test_f1"] == good["test_f1"]
    assert newest["metrics"]["test_f1"] == worse["test_f1"]
    assert str(round(worse["test_f1"], 4)) in newest["reason"]
    assert [entry["served"] for entry in trainer.history(NAME)] == [False, True]


def test_a_better_candidate_is_promoted(trainer, split):
    weak = train(trainer, split, depth=1)

    better = train(trainer, split, depth=4, promote="if_better")

    assert better["decision"] == "promoted"
    assert better["test_f1"] > weak["test_f1"]
    assert served_sha(trainer) == better["version"]
    assert report_row(trainer)["sha256"] == better["version"]
    history = trainer.history(NAME)
    assert [(entry["decision"], entry["served"]) for entry in history] == [
        ("promoted", True),
        ("promoted", False),
    ]
    assert history[0]["previous_metrics"]["test_f1"] == weak["test_f1"]


def test_the_served_version_is_scored_again_on_the_candidates_split(trainer, split):
    """The comparison uses the served pipeline's f1 on the new test split, not its report."""
    served = train(trainer, split, depth=2)
    frame = penguins()
    other_split = train_test_split(
        frame[list(FEATURES)], frame[TARGET], test_size=0.5, random_state=7, stratify=frame[TARGET]
    )
    pipeline = joblib.load(trainer.models_dir / f"{NAME}_model.pkl")
    X_test = other_split[1].to_numpy(dtype=np.float64)
    rescored = f1_score(other_split[3], pipeline.predict(X_test), average="weighted")
    assert rescored != served["test_f1"]  # else this test could not tell the two apart

    candidate = trainer.train_and_save(
        NAME, DecisionTreeClassifier(max_depth=3, random_state=0), *other_split, promote="if_better"
    )

    assert candidate["previous_metrics"]["test_f1"] == pytest.approx(rescored, abs=1e-12)
    expected = "promoted" if candidate["test_f1"] >= rescored else "rejected"
    assert candidate["decision"] == expected


def test_rollback_restores_the_exact_previous_bytes_and_the_api_serves_them(
    trainer, split, tmp_path
):
    first = train(trainer, split, depth=4)
    first_files = served_files(trainer)
    second = train(trainer, split, depth=1)
    bird, labels = bird_they_disagree_on(trainer, first, second)
    (tmp_path / "results").mkdir()
    settings = Settings(
        models_dir=trainer.models_dir,
        report_path=trainer.report_path,
        results_dir=tmp_path / "results",
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post(f"/classify/{NAME}", json=bird).json()
        assert (answer["species_id"], answer["model_version"]) == (labels[1], second["version"])

        entry = trainer.rollback(NAME)

        assert served_files(trainer) == first_files
        answer = client.post(f"/classify/{NAME}", json=bird).json()
        assert (answer["species_id"], answer["model_version"]) == (labels[0], first["version"])
        versions = client.get(f"/models/{NAME}/versions").json()
    assert entry["decision"] == "rolled_back" and entry["previous_version"] == second["version"]
    assert versions["served_version"] == first["version"]
    assert versions["versions"][0]["decision"] == "rolled_back"
    assert versions["versions"][0]["served"] is True


def bird_they_disagree_on(trainer, first: dict, second: dict) -> tuple[dict, tuple[int, int]]:
    """A real bird (as a /classify body) the two versions label differently, and both labels."""
    folders = trainer.models_dir / "versions" / NAME
    pipelines = [joblib.load(folders / r["version"] / f"{NAME}_model.pkl") for r in (first, second)]
    rows = penguins()[list(FEATURES)]
    predictions = [pipeline.predict(rows.to_numpy(dtype=np.float64)) for pipeline in pipelines]
    index = int(np.flatnonzero(predictions[0] != predictions[1])[0])
    bird = {name: float(value) for name, value in rows.iloc[index].items()}
    return bird, (int(predictions[0][index]), int(predictions[1][index]))


def test_rollback_to_a_named_version_by_its_prefix(trainer, split):
    versions = [train(trainer, split, depth=depth)["version"] for depth in (1, 2, 3)]
    pickle_of_first = trainer.models_dir / "versions" / NAME / versions[0] / "tree_model.pkl"

    trainer.rollback(NAME, versions[0][:12])

    assert (trainer.models_dir / "tree_model.pkl").read_bytes() == pickle_of_first.read_bytes()
    assert report_row(trainer)["sha256"] == versions[0]


def test_rollback_with_nothing_to_go_back_to_changes_nothing(trainer, split):
    train(trainer, split, depth=2)
    before = served_files(trainer)
    history_before = trainer.history(NAME)

    with pytest.raises(ValueError, match="no previously served version"):
        trainer.rollback(NAME)
    with pytest.raises(ValueError, match="is no kept version"):
        trainer.rollback(NAME, "0123456789abcdef")

    assert served_files(trainer) == before
    assert trainer.history(NAME) == history_before


def test_keep_versions_bounds_the_others_and_never_deletes_the_served_one(tmp_path, split):
    trainer = ModelTrainer(tmp_path / "models", tmp_path / "report.pkl", keep_versions=2)
    served = train(trainer, split, depth=5)
    rejected = [train(trainer, split, depth=1, promote="if_better")]
    estimators = [
        DecisionTreeClassifier(max_depth=1, max_features=k, random_state=k) for k in (2, 3, 4)
    ]
    for estimator in estimators:
        rejected.append(trainer.train_and_save(NAME, estimator, *split, promote="if_better"))

    assert [result["decision"] for result in rejected] == ["rejected"] * 4
    assert len({result["version"] for result in rejected}) == 4
    kept = {path.name for path in (trainer.models_dir / "versions" / NAME).iterdir()}
    assert kept == {served["version"], rejected[-1]["version"], rejected[-2]["version"]}
    assert len(trainer.history(NAME)) == 5  # pruning drops files, never history


def train_in_child(models_dir: str, report_path: str, depth: int, start) -> None:
    split = penguin_split()
    trainer = ModelTrainer(models_dir, report_path)
    start.wait(timeout=60)
    trainer.train_and_save(NAME, DecisionTreeClassifier(max_depth=depth, random_state=0), *split)


def test_two_trainings_of_the_same_name_at_once_both_end_up_in_the_history(tmp_path):
    models_dir, report_path = tmp_path / "models", tmp_path / "report" / "model_metrics.pkl"
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    processes = [
        context.Process(target=train_in_child, args=(models_dir, report_path, depth, start))
        for depth in (2, 4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        if process.is_alive():
            process.kill()

    assert [process.exitcode for process in processes] == [0, 0]
    trainer = ModelTrainer(models_dir, report_path)
    history = trainer.history(NAME)
    assert len(history) == 2 and len({entry["version"] for entry in history}) == 2
    assert [entry["decision"] for entry in history] == ["promoted", "promoted"]
    assert history[0]["previous_version"] == history[1]["version"]
    assert served_sha(trainer) == history[0]["version"] == report_row(trainer)["sha256"]
    kept = {path.name for path in (models_dir / "versions" / NAME).iterdir()}
    assert kept == {entry["version"] for entry in history}


def test_promote_rejects_an_unknown_rule_before_training(trainer, split):
    with pytest.raises(ValueError, match="always, if_better"):
        train(trainer, split, depth=1, promote="sometimes")

    assert list(trainer.models_dir.iterdir()) == []


def test_the_default_rule_comes_from_the_environment(tmp_path, monkeypatch, split):
    monkeypatch.setenv("TRAINER_PROMOTE", "if_better")
    trainer = ModelTrainer(tmp_path / "models", tmp_path / "report.pkl")
    train(trainer, split, depth=4, promote=None)

    assert trainer.promote == "if_better"
    assert train(trainer, split, depth=1, promote=None)["decision"] == "rejected"


def test_history_lines_are_json_with_what_the_issue_asks_for(trainer, split):
    train(trainer, split, depth=2)

    lines = (trainer.report_dir / f"{NAME}_history.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert set(entry) >= {"decided_at", "version", "decision", "reason", "metrics"}
    assert set(entry["metrics"]) == {
        "train_accuracy",
        "test_accuracy",
        "test_precision",
        "test_recall",
        "test_f1",
    }
    assert pd.Timestamp(entry["decided_at"]).tzinfo is not None

"""Train the notebook's prescribed models with the project's real ModelTrainer."""

import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from penguin_contract import FEATURES, TARGET, model_filename, onnx_filename, report_json_path
from support import REPO_ROOT
from utils.model_trainer import ModelTrainer

DATA_PATH = REPO_ROOT / "data" / "penguins_v1.csv"


def prescribed_estimators() -> dict[str, BaseEstimator]:
    """The notebook's models and hyperparameters (issue 2), each trained with StandardScaler."""
    return {
        "randomforest": RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42),
        "svm": SVC(kernel="rbf", C=1.0, random_state=42),
        "gradientboosting": GradientBoostingClassifier(
            n_estimators=100, max_depth=5, learning_rate=0.1, random_state=42
        ),
    }


def penguins() -> pd.DataFrame:
    return pd.read_csv(DATA_PATH)


def penguin_split() -> list[np.ndarray]:
    """X_train, X_test, y_train, y_test as the notebook splits them."""
    frame = penguins()
    X = frame[list(FEATURES)].to_numpy(dtype=np.float64)
    y = frame[TARGET].to_numpy()
    return train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)


@dataclass(frozen=True)
class ModelStore:
    """A models directory and its metrics report, as the trainer writes them."""

    models_dir: Path
    report_path: Path

    def trainer(self) -> ModelTrainer:
        return ModelTrainer(models_dir=self.models_dir, report_path=self.report_path)

    def train(self, estimators: dict[str, BaseEstimator]) -> dict[str, dict]:
        """Train and save each estimator (with StandardScaler); return the trainer's results."""
        split = penguin_split()
        trainer = self.trainer()
        results = {}
        with contextlib.redirect_stdout(io.StringIO()):  # the trainer prints its reports
            for name, estimator in estimators.items():
                results[name] = trainer.train_and_save(
                    name, estimator, *split, scaler=StandardScaler()
                )
        return results

    def copy_to(self, root: Path) -> "ModelStore":
        """A private copy (models + report) that a test may modify freely."""
        copy = ModelStore(root / "models", root / "report" / self.report_path.name)
        shutil.copytree(self.models_dir, copy.models_dir)
        shutil.copytree(self.report_path.parent, copy.report_path.parent)
        return copy

    def model_path(self, name: str) -> Path:
        return self.models_dir / model_filename(name)

    def onnx_path(self, name: str) -> Path:
        return self.models_dir / onnx_filename(name)

    @property
    def report_json_path(self) -> Path:
        return report_json_path(self.report_path)

    def report_rows(self) -> list[dict]:
        return json.loads(self.report_json_path.read_text())

    def write_report_rows(self, rows: list[dict]) -> None:
        """Replace the report, both twins (what the API reads: the JSON one)."""
        pd.DataFrame(rows).to_pickle(self.report_path)
        self.report_json_path.write_text(json.dumps(rows))


def train_prescribed_models(root: Path) -> ModelStore:
    store = ModelStore(root / "models", root / "report" / "model_metrics.pkl")
    store.train(prescribed_estimators())
    return store

"""Models for the benchmark, trained by the project's ModelTrainer, and their raw costs."""

import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from penguin_contract import FEATURES, TARGET, model_filename

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_PATH = REPO_ROOT / "data" / "penguins_v1.csv"
sys.path.insert(0, str(REPO_ROOT / "jupyter" / "notebooks"))
from utils.model_trainer import ModelTrainer  # noqa: E402

# The notebook's prescribed models (issue 2), trained the same way on the same split.
PRESCRIBED = {
    "randomforest": RandomForestClassifier(n_estimators=100, max_depth=10, random_state=42),
    "svm": SVC(kernel="rbf", C=1.0, random_state=42),
    "gradientboosting": GradientBoostingClassifier(
        n_estimators=100, max_depth=5, learning_rate=0.1, random_state=42
    ),
}
# The notebook's "add a new model" example (section 10), with the same scaler.
NOTEBOOK_KNN = {"knn": KNeighborsClassifier(n_neighbors=5)}


def penguin_data() -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(DATA_PATH)
    return frame[list(FEATURES)].to_numpy(dtype=np.float64), frame[TARGET].to_numpy()


def train(models_dir: Path, report_path: Path, estimators: dict) -> None:
    X, y = penguin_data()
    split = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    trainer = ModelTrainer(models_dir=models_dir, report_path=report_path)
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer prints its reports
        for name, estimator in estimators.items():
            trainer.train_and_save(name, estimator, *split, scaler=StandardScaler())


def load_pipeline(models_dir: Path, name: str):
    pipeline = joblib.load(models_dir / model_filename(name))
    params = pipeline.get_params(deep=True)
    pipeline.set_params(**{key: 1 for key in params if key.endswith("__n_jobs")})
    return pipeline


def median_seconds(call, repeats: int) -> float:
    call()  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def raw_rows_per_second(pipeline, rows: np.ndarray, repeats: int = 30) -> float:
    """Rows/s of ``pipeline.predict`` on the whole batch, in process, no HTTP."""
    return len(rows) / median_seconds(lambda: pipeline.predict(rows), repeats)

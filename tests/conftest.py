"""Shared fixtures. The reusable pieces live in tests/support/ (see its modules)."""

from pathlib import Path

import pytest
from support.models import ModelStore, train_prescribed_models


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """randomforest, svm and gradientboosting trained once per session by the real trainer.

    Shared and read-only: a test that changes files uses ``model_store`` (a private copy).
    """
    return train_prescribed_models(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def model_store(trained_models: ModelStore, tmp_path: Path) -> ModelStore:
    """A private, modifiable copy of the trained models and their report."""
    return trained_models.copy_to(tmp_path / "store")


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """An empty RESULTS_DIR (where the API writes predictions.log)."""
    path = tmp_path / "results"
    path.mkdir()
    return path


@pytest.fixture
def server_env(model_store: ModelStore, results_dir: Path) -> dict[str, str]:
    """The environment that points a live API at ``model_store`` and ``results_dir``."""
    return {
        "MODELS_DIR": str(model_store.models_dir),
        "REPORT_PATH": str(model_store.report_path),
        "RESULTS_DIR": str(results_dir),
    }

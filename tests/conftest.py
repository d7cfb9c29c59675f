"""Shared fixtures. The reusable pieces live in tests/support/ (see its modules)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.live_server import LiveServer, live_server
from support.models import ModelStore, train_prescribed_models

from app.core.config import Settings
from app.main import create_app


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


@pytest.fixture
def settings(model_store: ModelStore, results_dir: Path) -> Settings:
    return Settings(
        models_dir=model_store.models_dir,
        report_path=model_store.report_path,
        results_dir=results_dir,
    )


@pytest.fixture
def client(settings: Settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def log_path(settings: Settings) -> Path:
    return settings.predictions_log_path


@pytest.fixture(scope="module")
def module_server(
    trained_models: ModelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A live API (production launcher) on a private copy of the trained models, shared by
    the tests of one module."""
    root = tmp_path_factory.mktemp("live")
    store = trained_models.copy_to(root / "store")
    (root / "results").mkdir()
    env = {
        "MODELS_DIR": str(store.models_dir),
        "REPORT_PATH": str(store.report_path),
        "RESULTS_DIR": str(root / "results"),
    }
    with live_server(env, root / "server.out") as server:
        yield server

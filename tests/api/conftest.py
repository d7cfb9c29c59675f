from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.models import ModelStore

from app.core.config import Settings
from app.main import create_app


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

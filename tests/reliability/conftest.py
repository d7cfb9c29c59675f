"""Reliability tests run the API as production does: `python -m app.serve` with N workers."""

from pathlib import Path

import pytest
from support.api import body_from_row
from support.models import ModelStore, penguins


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    path = tmp_path / "results"
    path.mkdir()
    return path


@pytest.fixture
def server_env(model_store: ModelStore, results_dir: Path) -> dict[str, str]:
    return {
        "MODELS_DIR": str(model_store.models_dir),
        "REPORT_PATH": str(model_store.report_path),
        "RESULTS_DIR": str(results_dir),
    }


@pytest.fixture(scope="session")
def penguin_bodies() -> list[dict]:
    """Every bird of the data set as a request body (real, varied inputs)."""
    return [body_from_row(row) for _, row in penguins().iterrows()]

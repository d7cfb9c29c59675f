"""Reliability tests run the API as production does: `python -m app.serve` with N workers."""

import pytest
from support.api import body_from_row
from support.models import penguins


@pytest.fixture(scope="session")
def penguin_bodies() -> list[dict]:
    """Every bird of the data set as a request body (real, varied inputs)."""
    return [body_from_row(row) for _, row in penguins().iterrows()]

"""Penguin Classifier inference API. `uvicorn app:app` (from API/) serves this instance."""

from app.main import create_app

app = create_app()

__all__ = ["app", "create_app"]

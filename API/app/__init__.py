"""Penguin Classifier inference API. `uvicorn app:app` (from API/) serves this instance.

The instance is built on first access (PEP 562), so importing a submodule such as
``app.serve`` does not build the app nor import scikit-learn in uvicorn's supervisor.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["app"]


def __getattr__(name: str) -> "FastAPI":
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from app.main import create_app

    instance = create_app()
    globals()["app"] = instance
    return instance

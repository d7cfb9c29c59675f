"""Reusable test pieces: models trained by the real ModelTrainer, a live API server, load."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

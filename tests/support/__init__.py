"""Reusable test pieces: models trained by the real ModelTrainer, and a live uvicorn server."""

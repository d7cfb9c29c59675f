"""Penguin Classifier inference API: ``app.main.create_app`` builds it (uvicorn's factory
mode, see app.serve); nothing is built or read when the package is imported."""

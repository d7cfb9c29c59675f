"""Build the FastAPI application. Nothing here touches the disk until a request arrives."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.body_limit import BodySizeLimit
from app.api.exception_handlers import install_exception_handlers
from app.api.routes import ROUTERS
from app.core.config import Settings
from app.docs import mount_docs
from app.metrics import instrument
from app.models.registry import ModelRegistry
from app.prediction_log import PredictionLog
from app.report import MetricsReport
from app.service import PredictionService

DESCRIPTION = """
Classifies Palmer penguins (1 Adelie, 2 Chinstrap, 3 Gentoo) with the models trained in
Jupyter, served by ONNX Runtime from their ONNX twins (or by scikit-learn). Models are
discovered in MODELS_DIR on every request; every prediction is appended to the prediction log
in RESULTS_DIR before it is returned.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    prediction_log = PredictionLog(
        settings.predictions_log_path,
        fsync=settings.log_fsync,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
        lock_timeout_s=settings.log_lock_timeout_s,
    )
    registry = ModelRegistry(settings.models_dir, settings.max_model_bytes, settings.allow_pickle)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything imported so far lives as long as the process: keep it out of the
        # cyclic GC, whose full passes over it held the event loop ~100 ms under load.
        gc.freeze()
        yield
        prediction_log.close()
        registry.close()

    app = FastAPI(
        title="Penguin Classifier API",
        version="2.0.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    for router in ROUTERS:
        app.include_router(router)
    # Added first, so it runs inside the metrics middleware: refused bodies are counted.
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    predictions_counter = instrument(app)
    app.state.settings = settings
    app.state.prediction_log = prediction_log
    app.state.service = PredictionService(
        registry,
        MetricsReport(settings.report_path, settings.allow_pickle),
        prediction_log,
        predictions_counter,
        settings.max_batch_size,
    )
    install_exception_handlers(app)
    mount_docs(app)
    return app

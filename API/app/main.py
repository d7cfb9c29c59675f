"""Build the FastAPI application. Nothing here touches the disk until a request arrives."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.api.body_limit import BodySizeLimit
from app.api.routes import classify, health, models, reports, ui, v2
from app.api.routes.ui import STATIC_DIR
from app.catalog import Catalog
from app.core.config import Settings
from app.errors import REQUEST_ID, REQUEST_ID_HEADER, install_error_handlers
from app.metrics import instrument
from app.models.registry import ModelRegistry
from app.predict import Predictor
from app.prediction_log import PredictionLog
from app.report import MetricsReport

VERSION = "2.0.0"
DESCRIPTION = """Classifies Palmer penguins (1 Adelie, 2 Chinstrap, 3 Gentoo) with the models
trained in Jupyter, found in MODELS_DIR on every request. Every prediction is appended to the
prediction log in RESULTS_DIR before it is returned."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    prediction_log = PredictionLog(
        settings.predictions_log_path,
        fsync=settings.log_fsync,
        max_bytes=settings.log_max_bytes,
        backups=settings.log_backups,
        lock_timeout_s=settings.log_lock_timeout_s,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # What is loaded by now lives as long as the process: keeping it out of the cyclic
        # GC's full passes cut parsing a 512 KiB body of nested lists from ~330 to ~30 ms.
        gc.freeze()
        yield
        prediction_log.close()

    app = FastAPI(
        title="Penguin Classifier API",
        version=VERSION,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    for routes in (classify, v2, models, reports, health, ui):
        app.include_router(routes.router)
    # Added before the metrics middleware, so it runs inside it: refused bodies are counted.
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    # X-Request-ID on every answer (the client's if sane, else new); the log line records it.
    app.add_middleware(
        CorrelationIdMiddleware, header_name=REQUEST_ID_HEADER, validator=REQUEST_ID.fullmatch
    )
    registry = ModelRegistry(settings.models_dir, settings.max_model_bytes, settings.allow_pickle)
    app.state.settings = settings
    app.state.catalog = Catalog(
        registry, MetricsReport(settings.report_path, settings.allow_pickle)
    )
    app.state.predictor = Predictor(prediction_log, instrument(app), settings.max_batch_size)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

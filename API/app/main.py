"""Build the FastAPI application. Nothing here touches the disk until a request arrives."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.body_limit import BodySizeLimit
from app.api.exception_handlers import install_exception_handlers
from app.api.routes import api_router
from app.core.config import Settings
from app.docs import mount_docs
from app.listing import ModelListing
from app.metrics import instrument
from app.prediction_log import PredictionLog
from app.report import MetricsReport
from app.repository import ModelRepository
from app.service import PredictionService

DESCRIPTION = """
Classifies Palmer penguins (1 Adelie, 2 Chinstrap, 3 Gentoo) with the scikit-learn models
trained in Jupyter. Models are discovered in MODELS_DIR on every request; every prediction
is appended to RESULTS_DIR/predictions.log before it is returned.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    prediction_log = PredictionLog(settings.predictions_log_path, fsync=settings.log_fsync)
    repository = ModelRepository(settings.models_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        prediction_log.close()
        repository.close()

    app = FastAPI(
        title="Penguin Classifier API",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    report = MetricsReport(settings.report_path)
    app.include_router(api_router)
    predictions_counter = instrument(app)
    app.state.settings = settings
    app.state.report = report
    app.state.repository = repository
    app.state.listing = ModelListing(repository, report)
    app.state.prediction_log = prediction_log
    app.state.service = PredictionService(
        repository, report, prediction_log, predictions_counter, settings.max_batch_size
    )
    install_exception_handlers(app)
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes)
    mount_docs(app)
    return app

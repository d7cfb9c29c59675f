"""Typed dependencies: what a route needs, from the app's state (async: FastAPI resolves them
without a worker thread)."""

from typing import Annotated

from fastapi import Depends, Request

from app.catalog import Catalog
from app.predict import Predictor


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


async def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]


def get_readiness(catalog: CatalogDep, predictor: PredictorDep) -> dict[str, str]:
    """What /ready and /v2/health/ready check ("ok", or the problem); ``def``: it reads disk."""
    return {
        "models_dir": catalog.registry.files.problem() or "ok",
        "results_dir": predictor.log.problem() or "ok",
    }


ReadinessDep = Annotated[dict[str, str], Depends(get_readiness)]

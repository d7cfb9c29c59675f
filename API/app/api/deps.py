"""Typed dependencies: what a route needs, from the app's state (async: FastAPI resolves them
without a worker thread)."""

import os
import re
from typing import Annotated

from fastapi import Depends, Request, Response

from app.catalog import Catalog
from app.core.config import Settings
from app.errors import REQUEST_ID_HEADER
from app.predict import Predictor

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


async def get_predictor(request: Request) -> Predictor:
    return request.app.state.predictor


async def get_request_id(request: Request, response: Response) -> str:
    """The client's X-Request-ID when it is a sane token, else 128 random bits in hex. It is
    echoed in the response (errors included) and written in the prediction's log line."""
    supplied = request.headers.get(REQUEST_ID_HEADER)
    if supplied and _CLIENT_REQUEST_ID.fullmatch(supplied):
        request_id = supplied
    else:
        request_id = os.urandom(16).hex()
    request.state.request_id = request_id  # for the error handlers
    response.headers[REQUEST_ID_HEADER] = request_id
    return request_id


SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]
RequestIdDep = Annotated[str, Depends(get_request_id)]


def get_readiness(catalog: CatalogDep, predictor: PredictorDep) -> dict[str, str]:
    """What /ready and /v2/health/ready check: "ok", or the problem, for each. A plain
    function: FastAPI runs it in a worker thread, as it touches the disk."""
    return {
        "models_dir": catalog.registry.files.problem() or "ok",
        "results_dir": predictor.log.problem() or "ok",
    }


ReadinessDep = Annotated[dict[str, str], Depends(get_readiness)]

"""Liveness and readiness (GET and HEAD: load balancers and uptime checkers use HEAD)."""

import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import PredictionLogDep, SettingsDep
from app.schemas import Health, Readiness

router = APIRouter(tags=["monitoring"])


@router.get("/health", response_model=Health, summary="Liveness")
@router.head("/health", response_model=Health, summary="Liveness")
async def health() -> Health:
    """The process answers. Touches no file."""
    return Health(status="ok")


_READY = {
    "response_model": Readiness,
    "responses": {503: {"model": Readiness, "description": "A check failed; see `checks`"}},
    "summary": "Readiness",
}


@router.get("/ready", **_READY)
@router.head("/ready", **_READY)
def ready(settings: SettingsDep, prediction_log: PredictionLogDep) -> JSONResponse:
    """The models directory is readable and the prediction log can be appended to (it is a
    regular file, not a symlink, no other process holds its lock, the disk is not full)."""
    checks = {
        "models_dir": _models_dir_problem(settings.models_dir) or "ok",
        "results_dir": prediction_log.problem() or "ok",
    }
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def _models_dir_problem(models_dir: Path) -> str | None:
    try:
        with os.scandir(models_dir) as entries:
            next(entries, None)
    except FileNotFoundError:
        return f"models directory {models_dir} does not exist"
    except OSError as error:
        return f"models directory {models_dir} is not readable: {error.strerror}"
    return None

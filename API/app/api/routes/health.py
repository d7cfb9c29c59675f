"""Liveness and readiness."""

import os

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import PredictionLogDep, SettingsDep
from app.schemas import Health, Readiness

router = APIRouter(tags=["monitoring"])


@router.get("/health", response_model=Health, summary="Liveness")
async def health() -> dict:
    """The process answers. Touches no file."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "A check failed; see `checks`"}},
    summary="Readiness",
)
def ready(settings: SettingsDep, prediction_log: PredictionLogDep) -> JSONResponse:
    """The models directory is readable and predictions.log can be appended to."""
    checks = {
        "models_dir": _models_dir_problem(settings.models_dir) or "ok",
        "results_dir": prediction_log.problem() or "ok",
    }
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def _models_dir_problem(models_dir) -> str | None:
    try:
        with os.scandir(models_dir) as entries:
            next(entries, None)
    except FileNotFoundError:
        return f"models directory {models_dir} does not exist"
    except OSError as error:
        return f"models directory {models_dir} is not readable: {error.strerror}"
    return None

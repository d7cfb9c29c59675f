"""Liveness and readiness (GET and HEAD: load balancers and uptime checkers use HEAD)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ReadinessDep
from app.schemas import Health, Readiness

router = APIRouter(tags=["monitoring"])


@router.get("/health", summary="Liveness")
@router.head("/health", summary="Liveness")
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
async def ready(checks: ReadinessDep) -> JSONResponse:
    """The models directory is readable and the prediction log can be appended to (it is a
    regular file, not a symlink, no other process holds its lock, the disk is not full)."""
    ready = all(value == "ok" for value in checks.values())
    body = Readiness(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

"""GET /models and GET /models/{name}."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.api.deps import ServiceDep
from app.api.openapi import MODEL_NOT_FOUND
from app.schemas import ModelDetail, ModelsResponse

router = APIRouter(tags=["models"])


@router.get("/models", response_model=ModelsResponse, summary="List the available models")
@router.head("/models", response_model=ModelsResponse, summary="List the available models")
async def list_models(service: ServiceDep) -> Response:
    """Every `{name}_model.pkl` in MODELS_DIR, sorted by name, with its report metrics and
    the runtime that serves it (`onnx` when it has a matching ONNX twin, else `sklearn`).

    Files that cannot be served are listed too, with `status` and `reason`. Each file is
    loaded once per version, so a listing reads no model file in the steady state.
    """
    return Response(await service.listing_json(), media_type="application/json")


@router.get(
    "/models/{name}",
    response_model=ModelDetail,
    responses=MODEL_NOT_FOUND,
    summary="Describe one model",
)
async def describe_model(
    name: Annotated[str, Path(examples=["randomforest", "best"])], service: ServiceDep
) -> ModelDetail:
    """Metrics, training metadata, sha256 of the served file, status and runtime ('best'
    resolves). Metrics and metadata come only from a report row with this file's sha256."""
    return await service.describe(name)

"""GET /models and GET /models/{name}."""

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import CatalogDep
from app.api.openapi import MODEL_NOT_FOUND
from app.schemas import ModelDetail, ModelsResponse

router = APIRouter(tags=["models"])


@router.get("/models", summary="List the available models")
@router.head("/models", summary="List the available models")
def list_models(catalog: CatalogDep) -> ModelsResponse:
    """Every `{name}_model.pkl` in MODELS_DIR, sorted by name, with its report metrics and
    the runtime that serves it (`onnx` when it has a matching ONNX twin, else `sklearn`).

    Files that cannot be served are listed too, with `status` and `reason`. Each file is
    loaded once per version, so a listing reads no model file in the steady state.
    """
    return ModelsResponse(available_models=catalog.summaries())


@router.get("/models/{name}", responses=MODEL_NOT_FOUND, summary="Describe one model")
def describe_model(
    name: Annotated[str, Path(examples=["randomforest", "best"])], catalog: CatalogDep
) -> ModelDetail:
    """Metrics, training metadata, sha256 of the served file, status and runtime ('best'
    resolves). Metrics and metadata come only from a report row with this file's sha256."""
    return catalog.describe(name)

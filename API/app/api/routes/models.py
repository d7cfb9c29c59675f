"""GET /models, GET /models/{name} and GET /models/{name}/versions."""

from typing import Annotated

from fastapi import APIRouter, Path

from app.api.deps import CatalogDep
from app.api.openapi import MODEL_NOT_FOUND
from app.history import ModelVersions, model_versions
from app.schemas import ErrorResponse, ModelDetail, ModelsResponse

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


_UNREADABLE_HISTORY = {"model": ErrorResponse, "description": "The history file cannot be read"}


@router.get(
    "/models/{name}/versions",
    responses={**MODEL_NOT_FOUND, 503: _UNREADABLE_HISTORY},
    summary="A model's versions: promotions, rejections and rollbacks",
)
def list_versions(
    name: Annotated[str, Path(examples=["randomforest", "best"])],
    catalog: CatalogDep,
) -> ModelVersions:
    """The trainer's history of this model, newest first: each trained version, whether the
    promotion rule served it or rejected it and why, with the metrics of the version served
    before on the same test split, and every rollback. `served` marks the version whose
    pickle is served now. Read from `{name}_history.jsonl` in the report directory (JSON
    only: it works with ALLOW_PICKLE=false); 404 when there is no such model file."""
    model = catalog.find(name)
    return model_versions(catalog.report.json_path.parent, model.name, model.sha256)

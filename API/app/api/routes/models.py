"""GET /models and GET /models/{name}."""

import json
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import ListingDep, ReportDep, RepositoryDep, ServiceDep
from app.api.openapi import MODEL_NOT_FOUND
from app.errors import ModelNotFoundError
from app.report import EMPTY_ROW, MetricsReport, ReportRow
from app.repository import LoadedModel, ModelRepository
from app.schemas import ModelDetail, ModelsResponse
from app.service import BEST_ALIAS
from penguin_contract import normalize_model_name

router = APIRouter(tags=["models"])


def _summary(model: LoadedModel, row: ReportRow) -> dict:
    return {
        "name": model.name,
        "endpoint": f"POST /classify/{model.name}",
        "metrics": row.metrics,
        "status": model.status,
        "reason": model.reason,
    }


@router.get("/models", response_model=ModelsResponse, summary="List the available models")
async def list_models(
    repository: RepositoryDep, report: ReportDep, listing: ListingDep
) -> Response:
    """Every `{name}_model.pkl` in MODELS_DIR, sorted by name, with its report metrics.

    Files that cannot be served are listed too, with `status` and `reason`. Each file is
    loaded once per version (then cached), so a listing reads no pickle in the steady state.
    """
    state = listing.state()
    body = listing.body_for(state)
    if body is None:
        body = await _listing_body(repository, report)
        listing.remember(state, body)
    return Response(body, media_type="application/json")


async def _listing_body(repository: ModelRepository, report: MetricsReport) -> bytes:
    rows = report.rows()
    discovered = repository.discover()
    models = repository.cached_models(discovered)
    if len(models) < len(discovered):
        models = await run_in_threadpool(repository.load_models, discovered)
    entries = b",".join(
        _summary_json(models[name], rows.get(name, EMPTY_ROW)) for name in sorted(models)
    )
    return b'{"available_models":[' + entries + b"]}"


# (model's name, file key, status, reason, id(row)) -> (row, entry). The row is kept so its id
# stays unique; the LoadedModel is not, so a superseded pipeline can be freed.
_SUMMARY_CACHE: dict[tuple, tuple[ReportRow, bytes]] = {}
_SUMMARY_CACHE_SIZE = 1024


def _summary_json(model: LoadedModel, row: ReportRow) -> bytes:
    """One listing entry, encoded once per (model file version, report row) pair."""
    key = (model.name, model.key, model.status, model.reason, id(row))
    cached = _SUMMARY_CACHE.get(key)
    if cached is not None:
        return cached[1]
    if len(_SUMMARY_CACHE) >= _SUMMARY_CACHE_SIZE:
        _SUMMARY_CACHE.clear()
    entry = json.dumps(_summary(model, row), separators=(",", ":")).encode()
    _SUMMARY_CACHE[key] = (row, entry)
    return entry


@router.get(
    "/models/{name}",
    response_model=ModelDetail,
    responses=MODEL_NOT_FOUND,
    summary="Describe one model",
)
def describe_model(
    name: Annotated[str, Path(examples=["randomforest", "best"])],
    repository: RepositoryDep,
    report: ReportDep,
    service: ServiceDep,
) -> dict:
    """Metrics, training metadata, sha256 of the served file and status ('best' resolves)."""
    if name.strip().lower() == BEST_ALIAS:
        model = service.best_model()
    else:
        try:
            model = repository.get(normalize_model_name(name))
        except ValueError:
            raise ModelNotFoundError(name) from None
    row = report.row(model.name)
    return {
        **_summary(model, row),
        **row.metadata,
        "sha256": model.sha256,
        "file_size": model.key.size,
        "report_matches_file": row.metadata.get("sha256") == model.sha256,
        "probabilities": model.has_proba,
    }

"""Read-only views for the web page: confusion matrices, recent predictions, prediction counts."""

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.deps import CatalogDep, PredictorDep
from app.errors import APIError
from app.log_tail import read_tail
from app.metrics import prediction_counts
from app.models.files import read_regular_file
from app.schemas import ErrorResponse
from penguin_contract import confusion_matrix_filename

router = APIRouter(tags=["reports"])

MAX_PNG_BYTES = 4 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_RECENT = 100
TAIL_BYTES = 256 * 1024


class PredictionResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    species_id: int
    species_name: str
    probabilities: dict[str, float] | None = None


class LoggedPrediction(BaseModel):
    """One line of predictions.log (fields added to the log later pass through)."""

    model_config = ConfigDict(extra="allow")

    timestamp: str
    request_id: str
    model: str
    runtime: str | None = None
    input: dict[str, int | float]
    result: PredictionResult
    latency_ms: float | None = None
    batch_index: int | None = None
    batch_size: int | None = None


class RecentPredictions(BaseModel):
    predictions: list[LoggedPrediction] = Field(description="Newest first")
    skipped: int = Field(description="Lines in the window read that were not predictions")
    bytes_read: int = Field(description=f"Bytes of the log's end read (at most {TAIL_BYTES})")


class SpeciesCount(BaseModel):
    model: str
    species: str
    count: int


class PredictionStats(BaseModel):
    total: int
    by_model: dict[str, int]
    by_species: dict[str, int]
    counts: list[SpeciesCount] = Field(description="One entry per (model, species) seen")


_NO_MATRIX = {"model": ErrorResponse, "description": "No confusion matrix for this model (or name)"}


@router.get(
    "/models/{name}/confusion-matrix",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "PNG"}, 404: _NO_MATRIX},
    summary="A model's test-set confusion matrix",
)
def confusion_matrix(
    name: Annotated[str, Path(examples=["randomforest"])], catalog: CatalogDep
) -> Response:
    """The PNG the trainer saved for this model in the report directory (404 when absent)."""
    try:
        path = catalog.report.json_path.parent / confusion_matrix_filename(name)
        # A regular file only: no symlink (ELOOP), FIFO or file over the size cap.
        png = read_regular_file(path, MAX_PNG_BYTES, follow_symlinks=False)
    except (ValueError, OSError):  # an invalid name, or no such file
        png = b""
    if not png.startswith(PNG_SIGNATURE):
        message = f"No confusion matrix for model {name!r}: the trainer saves one in the report "
        message += "directory when it trains the model. GET /models lists the models."
        raise APIError(message, 404, "confusion_matrix_not_found")
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get(
    "/predictions/recent",
    response_model=RecentPredictions,
    response_model_exclude_unset=True,
    summary="The latest predictions",
)
def recent_predictions(
    predictor: PredictorDep,
    limit: Annotated[int, Query(ge=1, le=MAX_RECENT)] = 20,
) -> dict[str, Any]:
    """The last `limit` lines of predictions.log, newest first, from its last 256 KiB only."""
    try:
        tail = read_tail(predictor.log.path, limit, TAIL_BYTES)
    except OSError:  # a symlink or a FIFO in the log's place, or unreadable
        return {"predictions": [], "skipped": 0, "bytes_read": 0}
    predictions, skipped = [], tail.skipped
    for record in tail.records:
        try:
            predictions.append(LoggedPrediction.model_validate(record))
        except ValidationError:
            skipped += 1
    return {"predictions": predictions, "skipped": skipped, "bytes_read": tail.bytes_read}


@router.get(
    "/predictions/stats",
    response_model=PredictionStats,
    summary="Predictions per model and species since the start",
)
def prediction_stats(predictor: PredictorDep) -> dict[str, Any]:
    """From the `penguin_predictions` counter of /metrics, summed over every worker."""
    counts = prediction_counts(predictor.counter)
    by_model, by_species = Counter[str](), Counter[str]()
    for (model, species), count in counts.items():
        by_model[model] += count
        by_species[species] += count
    return {
        "total": sum(counts.values()),
        "by_model": by_model,
        "by_species": by_species,
        "counts": [
            {"model": model, "species": species, "count": count}
            for (model, species), count in counts.items()
        ],
    }

"""POST /classify/{model} and its batch variant."""

import asyncio
import time
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Body, Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import SkipValidation

from app.api.deps import REQUEST_ID_HEADER, request_id_of, service_of
from app.api.exception_handlers import MAX_LISTED_ISSUES, TruncatedValidationError
from app.api.json_route import OrjsonRoute, json_response
from app.api.openapi import BATCH_EXAMPLES, CLASSIFY_ERRORS, CLASSIFY_EXAMPLES
from app.schemas import (
    CHUNK_ROWS,
    BatchPrediction,
    BatchRequest,
    PenguinFeatures,
    Prediction,
    batch_length,
    checked_columns,
    feature_rows,
    predictions_of,
    validated_slice,
)

router = APIRouter(tags=["classification"], route_class=OrjsonRoute)

ModelName = Annotated[
    str,
    Path(
        description="A model from GET /models (any case), or 'best' for the highest test_f1",
        examples=["randomforest", "best"],
    ),
]
_REQUEST_ID_DOC = {REQUEST_ID_HEADER: {"description": "Also in the prediction's log line"}}


async def batch_rows(request: Request) -> np.ndarray:
    """The batch's rows, validated: 413 above MAX_BATCH_SIZE before any row is validated;
    valid columns in a few NumPy passes; anything else CHUNK_ROWS rows at a time, giving the
    event loop back between chunks, so a body full of errors (7,000 for 1,000 empty objects)
    never holds other requests up. (pydantic holds the GIL while it validates: a worker
    thread would not help.) The route's body parameter skips FastAPI's own validation,
    which would validate all the rows a second time."""
    if not await request.body():  # FastAPI parses only a non-empty body: say what it would
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Required"}])
    body = await request.json()
    size = batch_length(body)
    service_of(request).check_batch_size(size)
    columns = checked_columns(body)
    if columns is not None:
        return np.column_stack(list(columns.values()))
    parts, issues, found = [], [], 0
    for start in range(0, max(size, 1), CHUNK_ROWS):
        rows, listed, count = validated_slice(
            body, start, start + CHUNK_ROWS, MAX_LISTED_ISSUES - found
        )
        parts.append(rows)
        issues += listed
        found += count
        await asyncio.sleep(0)
    if found:
        raise TruncatedValidationError(issues, omitted=found - len(issues))
    return np.concatenate(parts)


@router.post(
    "/classify/{model}",
    response_model=Prediction,
    responses={200: {"headers": _REQUEST_ID_DOC}, **CLASSIFY_ERRORS},
    summary="Classify one penguin",
)
async def classify(
    model: ModelName,
    features: Annotated[PenguinFeatures, Body(openapi_examples=CLASSIFY_EXAMPLES)],  # type: ignore[valid-type]
    request: Request,
) -> Response:
    """Predict the species of one bird. The prediction is logged before it is returned.

    `island` and `sex` take codes or names (`"Biscoe"`, `"female"`, any case).
    """
    started = time.perf_counter()
    service, request_id = service_of(request), request_id_of(request)
    served = await service.model_for(model)
    predictions = await service.predict(
        served, feature_rows([features]), request_id, started, batch=False
    )
    return json_response(predictions_of(predictions)[0], request_id)


@router.post(
    "/classify/{model}/batch",
    response_model=BatchPrediction,
    responses={200: {"headers": _REQUEST_ID_DOC}, **CLASSIFY_ERRORS},
    summary="Classify several penguins",
)
async def classify_batch(
    model: ModelName,
    # Documents the body; batch_rows validates it.
    body: Annotated[BatchRequest, SkipValidation, Body(openapi_examples=BATCH_EXAMPLES)],  # type: ignore[valid-type]
    rows: Annotated[np.ndarray, Depends(batch_rows)],
    request: Request,
) -> Response:
    """Predict up to MAX_BATCH_SIZE birds (413 above it, before any row is validated).

    The body is either `{"instances": [{...}, ...]}` or, cheaper for large batches,
    `{"columns": {"island": [...], "bill_length_mm": [...], ...}}`.

    Each row gets its own log line; the lines share the request id and carry
    `batch_index` and `batch_size`, and are appended in one write.
    """
    started = time.perf_counter()
    service, request_id = service_of(request), request_id_of(request)
    served = await service.model_for(model)
    predictions = await service.predict(served, rows, request_id, started, batch=True)
    batch = {"model": predictions.model, "request_id": request_id}
    return json_response({**batch, "predictions": predictions_of(predictions)}, request_id)

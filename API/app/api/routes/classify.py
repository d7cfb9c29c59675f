"""POST /classify/{model} and its batch variant."""

import time
from typing import Annotated

from fastapi import APIRouter, Body, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import REQUEST_ID_HEADER, RequestIdDep, ServiceDep
from app.api.json_route import OrjsonRoute
from app.api.openapi import BATCH_EXAMPLES, CLASSIFY_ERRORS, CLASSIFY_EXAMPLES
from app.schemas import (
    BatchPrediction,
    BatchRequest,
    PenguinFeatures,
    Prediction,
    feature_rows,
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


@router.post(
    "/classify/{model}",
    response_model=Prediction,
    responses={200: {"headers": _REQUEST_ID_DOC}, **CLASSIFY_ERRORS},
    summary="Classify one penguin",
)
async def classify(
    model: ModelName,
    features: Annotated[PenguinFeatures, Body(openapi_examples=CLASSIFY_EXAMPLES)],  # type: ignore[valid-type]
    service: ServiceDep,
    request_id: RequestIdDep,
) -> Response:
    """Predict the species of one bird. The prediction is logged before it is returned.

    `island` and `sex` take codes or names (`"Biscoe"`, `"female"`, any case).
    """
    started = time.perf_counter()
    loaded = await service.model_for(model)
    rows = feature_rows([features])
    if service.log.fsync:  # an fsync blocks for milliseconds: keep it off the event loop
        predictions = await run_in_threadpool(service.classify, loaded, rows, request_id, started)
    else:
        predictions = service.classify(loaded, rows, request_id, started)
    return _json_response(predictions.prediction_json(), request_id)


@router.post(
    "/classify/{model}/batch",
    response_model=BatchPrediction,
    responses={200: {"headers": _REQUEST_ID_DOC}, **CLASSIFY_ERRORS},
    summary="Classify several penguins",
)
async def classify_batch(
    model: ModelName,
    body: Annotated[BatchRequest, Body(openapi_examples=BATCH_EXAMPLES)],  # type: ignore[valid-type]
    service: ServiceDep,
    request_id: RequestIdDep,
) -> Response:
    """Predict up to MAX_BATCH_SIZE birds (413 above it), in order.

    The body is either `{"instances": [{...}, ...]}` or, cheaper for large batches,
    `{"columns": {"island": [...], "bill_length_mm": [...], ...}}`.

    Each row gets its own log line; the lines share the request id and carry
    `batch_index` and `batch_size`, and are appended in one write.
    """
    started = time.perf_counter()
    service.check_batch_size(body.size())
    loaded = await service.model_for(model)
    predictions = await run_in_threadpool(
        service.classify, loaded, body.rows(), request_id, started, batch=True
    )
    return _json_response(predictions.batch_json(request_id), request_id)


def _json_response(content: bytes, request_id: str) -> Response:
    """Already-encoded JSON (see app.log_records), with the request id header."""
    return Response(content, media_type="application/json", headers={REQUEST_ID_HEADER: request_id})

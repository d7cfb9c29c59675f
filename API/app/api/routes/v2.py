"""The Open Inference Protocol (KServe v2) REST endpoints, beside the API's own.

Same models, 'best' alias, runtimes, log lines (one per row; a tensor of several rows is
logged as a batch) and counters as /classify: everything but the protocol's encoding is the
service's. Errors answer {"error": message} (see app.v2.errors). A model's only version is the
served file's sha256; the /versions/{version} forms answer for that version alone. Not in the
OpenAPI document: the protocol has its own specification.
"""

import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import (
    REQUEST_ID_HEADER,
    PredictionLogDep,
    ServiceDep,
    SettingsDep,
    request_id_of,
    service_of,
)
from app.api.routes import health
from app.errors import PenguinAPIError
from app.models.loading import ServedModel
from app.models.runtimes import RuntimeName
from app.service import PredictionService
from app.v2 import tensors
from app.v2.errors import InferenceProtocolError, UnknownVersionError
from app.v2.schemas import (
    ErrorBody,
    ModelMetadata,
    ModelReady,
    ServerLive,
    ServerMetadata,
    ServerReady,
)
from app.validation import check_rows, describe
from penguin_contract import FEATURES, SPECIES

router = APIRouter(tags=["Open Inference Protocol (v2)"], include_in_schema=False)

SERVER_NAME = "penguin-classifier"
EXTENSIONS = ["binary_tensor_data"]
PLATFORMS = {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}
# Bodies above this are parsed off the event loop, and tensors above this many rows are
# decoded and validated off it: beyond those sizes the work takes about a millisecond.
THREADPOOL_BODY_BYTES = 64 * 1024
THREADPOOL_ROWS = 256
ModelName = Annotated[str, Path(description="A model from GET /models (any case), or 'best'")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 413, 500, 503)
}


# --- Contact with the serving core --------------------------------------------------------


def _runtime(model: ServedModel) -> RuntimeName:
    assert model.runtime is not None  # model_for returns usable models only
    return model.runtime.name


# --- Inference (first: routes are matched in order) ----------------------------------------


@router.post("/v2/models/{name}/infer", responses=_ERRORS)
async def infer(name: ModelName, request: Request) -> Response:
    """Predict N birds from one [N, 7] tensor or one [N] tensor per field (see app.v2.tensors)."""
    return await _infer(request, name, version=None)


@router.post("/v2/models/{name}/versions/{version}/infer", responses=_ERRORS)
async def infer_version(name: ModelName, version: str, request: Request) -> Response:
    """The same, for the model's only version (the served file's sha256)."""
    return await _infer(request, name, version)


async def _infer(request: Request, name: str, version: str | None) -> Response:
    """(The unversioned route has no ``version`` parameter: an optional one would be read
    from the query string on every request.)"""
    started = time.perf_counter()
    service, request_id = service_of(request), request_id_of(request)
    encoding = request.headers.get("content-encoding", "identity")
    if encoding.lower() != "identity":  # tritonclient compresses only when asked to
        raise InferenceProtocolError(
            f"Content-Encoding {encoding[:40]!r} is not supported: send the body uncompressed"
        )
    body = await request.body()
    header_length = request.headers.get(tensors.HEADER_LENGTH_HEADER)
    model = await _served_model(service, name, version)
    parsed, rows = await _rows(service, body, header_length)
    wanted = tensors.requested_outputs(parsed.request, model.has_probabilities)
    # One log line per row, counted, as on /classify. A single row is predicted as /classify
    # predicts one (on the event loop, no batch fields in its line): the service sends every
    # batch to a worker thread, and that hop cost 2-3 ms of the single-row latency here.
    predictions = await service.predict(model, rows, request_id, started, batch=len(rows) > 1)
    content, json_length = tensors.encode_response(
        model.name,
        model.sha256,
        parsed.request.id or request_id,
        {"runtime": _runtime(model)},
        tensors.output_tensors(wanted, predictions.species_ids, predictions.probabilities),
    )
    headers = {REQUEST_ID_HEADER: request_id}
    if json_length is None:
        return Response(content, media_type="application/json", headers=headers)
    headers[tensors.HEADER_LENGTH_HEADER] = str(json_length)
    return Response(content, media_type="application/octet-stream", headers=headers)


async def _rows(
    service: PredictionService, body: bytes, header_length: str | None
) -> tuple[tensors.ParsedRequest, np.ndarray]:
    """The parsed request and its validated rows; the batch size is checked before decoding."""
    if len(body) > THREADPOOL_BODY_BYTES:
        parsed = await run_in_threadpool(tensors.parse_request, body, header_length)
    else:
        parsed = tensors.parse_request(body, header_length)
    service.check_batch_size(parsed.batch_size)
    if parsed.batch_size > THREADPOOL_ROWS or len(body) > THREADPOOL_BODY_BYTES:
        return parsed, await run_in_threadpool(_valid_rows, parsed)
    return parsed, _valid_rows(parsed)


def _valid_rows(parsed: tensors.ParsedRequest) -> np.ndarray:
    rows = tensors.decode_rows(parsed)
    issues = check_rows(rows)
    if issues:
        raise InferenceProtocolError(describe(issues))
    return rows


# --- Health and metadata ---------------------------------------------------------------


@router.get("/v2", response_model=ServerMetadata, responses=_ERRORS)
async def server_metadata(request: Request) -> dict:
    return {"name": SERVER_NAME, "version": request.app.version, "extensions": EXTENSIONS}


@router.get("/v2/health/live", response_model=ServerLive)
async def server_live() -> dict:
    return {"live": True}


@router.get("/v2/health/ready", response_model=ServerReady, responses=_ERRORS)
def server_ready(settings: SettingsDep, prediction_log: PredictionLogDep) -> JSONResponse:
    """Ready when GET /ready is: the models directory is readable and the log appendable."""
    ready = health.ready(settings, prediction_log).status_code == 200
    # The spec: 200 means true, a 4xx status false.
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


@router.get("/v2/models/{name}/ready", response_model=ModelReady, responses=_ERRORS)
@router.get("/v2/models/{name}/versions/{version}/ready", response_model=ModelReady)
async def model_ready(name: ModelName, service: ServiceDep, version: str | None = None):
    """200 when the model predicts; 400 when its file cannot be served; 404 when unknown."""
    try:
        model = await _served_model(service, name, version)
    except PenguinAPIError as error:
        if error.status_code == 404:  # unknown model, or no 'best'
            raise
        return JSONResponse({"name": name, "ready": False, "error": error.message}, status_code=400)
    return {"name": model.name, "ready": True}


@router.get("/v2/models/{name}", response_model=ModelMetadata, responses=_ERRORS)
@router.get("/v2/models/{name}/versions/{version}", response_model=ModelMetadata)
async def model_metadata(name: ModelName, service: ServiceDep, version: str | None = None):
    model = await _served_model(service, name, version)
    outputs = [{"name": tensors.LABEL_OUTPUT, "datatype": "INT64", "shape": [-1]}]
    if model.has_probabilities:
        outputs.append(
            {"name": tensors.PROBABILITIES_OUTPUT, "datatype": "FP64", "shape": [-1, len(SPECIES)]}
        )
    return {
        "name": model.name,
        "versions": [model.sha256],
        "platform": PLATFORMS[_runtime(model)],
        "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, len(FEATURES)]}],
        "outputs": outputs,
    }


async def _served_model(service: PredictionService, name: str, version: str | None) -> ServedModel:
    model = await service.model_for(name)
    if version is not None and version != model.sha256:
        raise UnknownVersionError(model.name, version, model.sha256)
    return model

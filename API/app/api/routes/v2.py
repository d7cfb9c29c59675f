"""The Open Inference Protocol (KServe v2) endpoints: the same models, 'best', catalog, predictor,
log lines (a tensor of several rows is logged as a batch) and counters as /classify. A model's
only version is its file's sha256. Errors are {"error": message} (app.errors)."""

from typing import Annotated

from asgi_correlation_id import correlation_id
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import CatalogDep, PredictorDep, ReadinessDep
from app.catalog import Catalog
from app.errors import (
    InferenceRequestError,
    ModelNotFoundError,
    ModelUnavailableError,
)
from app.models.loading import ServedModel
from app.rows import check_rows
from app.v2 import outputs, tensors
from penguin_contract import FEATURES

router = APIRouter(include_in_schema=False)

PLATFORMS = {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}
MAX_DESCRIBED_ISSUES = 5


async def uncompressed_body(
    request: Request, content_encoding: Annotated[str, Header()] = "identity"
) -> bytes:
    """The body, refused when compressed (tritonclient compresses only when asked to)."""
    if content_encoding.lower() != "identity":
        raise InferenceRequestError(
            f"Content-Encoding {content_encoding[:40]!r} is not supported: send it uncompressed"
        )
    return await request.body()


@router.post("/v2/models/{name}/infer")
@router.post("/v2/models/{name}/versions/{version}/infer")
async def infer(
    name: str,
    catalog: CatalogDep,
    predictor: PredictorDep,
    body: Annotated[bytes, Depends(uncompressed_body)],
    header_length: Annotated[str | None, Header(alias=tensors.HEADER_LENGTH)] = None,
    version: str | None = None,
) -> Response:
    """Predict N birds from one [N, 7] tensor or one [N] tensor per field."""
    model = _of_version(await catalog.model_for(name), version)
    request_id = correlation_id.get() or ""
    request = tensors.parse_request(body, header_length)
    predictor.check_batch_size(tensors.batch_size(request.inputs))
    rows = tensors.decode_rows(request.inputs)
    issues = check_rows(rows)
    if issues.total:
        raise InferenceRequestError(issues.describe(MAX_DESCRIBED_ISSUES))
    wanted = outputs.requested_outputs(request, model.has_probabilities)
    predictions = await predictor.predict(model, rows, request_id, batch=len(rows) > 1)
    header = {
        "model_name": model.name,
        "model_version": model.sha256,
        "id": request.id or request_id,
        "parameters": {"runtime": predictions.runtime},
    }
    content, json_length = outputs.encode_response(header, wanted, predictions)
    if json_length is None:
        return Response(content, media_type="application/json")
    headers = {tensors.HEADER_LENGTH: str(json_length)}
    return Response(content, media_type="application/octet-stream", headers=headers)


@router.get("/v2")
async def server_metadata(request: Request) -> dict:
    extensions = ["binary_tensor_data"]
    return {"name": "penguin-classifier", "version": request.app.version, "extensions": extensions}


@router.get("/v2/health/live")
async def server_live() -> dict:
    return {"live": True}


@router.get("/v2/health/ready")
async def server_ready(checks: ReadinessDep) -> JSONResponse:
    """Ready when GET /ready is; the protocol answers 200 when ready, a 4xx status when not."""
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready}, 200 if ready else 400)


@router.get("/v2/models/{name}/ready")
@router.get("/v2/models/{name}/versions/{version}/ready")
def model_ready(name: str, catalog: CatalogDep, version: str | None = None) -> JSONResponse:
    """200 when the model predicts; 400 when its file cannot be served; 404 when unknown."""
    try:
        model = _served_model(catalog, name, version)
    except ModelUnavailableError as error:
        return JSONResponse({"name": name, "ready": False, "error": error.message}, 400)
    return JSONResponse({"name": model.name, "ready": True})


@router.get("/v2/models/{name}")
@router.get("/v2/models/{name}/versions/{version}")
def model_metadata(name: str, catalog: CatalogDep, version: str | None = None) -> dict:
    model = _served_model(catalog, name, version)
    assert model.runtime is not None  # the catalog hands out servable models only
    return {
        "name": model.name,
        "versions": [model.sha256],
        "platform": PLATFORMS[model.runtime.name],
        "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, len(FEATURES)]}],
        "outputs": outputs.output_metadata(model.has_probabilities),
    }


def _served_model(catalog: Catalog, name: str, version: str | None) -> ServedModel:
    return _of_version(catalog.servable(name), version)


def _of_version(model: ServedModel, version: str | None) -> ServedModel:
    if version is not None and version != model.sha256:
        why = f"has no version {version!r}; its only version is {model.sha256}, its sha256"
        raise ModelNotFoundError(model.name, why)
    return model

"""The Open Inference Protocol (KServe v2) REST endpoints, beside the API's own.

Same models, 'best' alias, runtimes, log lines (one per row; a tensor of several rows is
logged as a batch) and counters as /classify, through the same catalog and predictor.
Errors answer {"error": message} (app.errors decides the body by path). A model's only
version is the served file's sha256. Not in the OpenAPI document: the protocol has its own
specification.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import CatalogDep, PredictorDep, ReadinessDep, RequestIdDep
from app.catalog import Catalog
from app.errors import REQUEST_ID_HEADER, APIError, InferenceRequestError, UnknownVersionError
from app.models.loading import ServedModel
from app.predict import Predictor
from app.rows import check_rows
from app.v2 import outputs, tensors
from app.v2.schemas import ModelMetadata, ModelReady, ServerLive, ServerMetadata, ServerReady
from penguin_contract import FEATURES, SPECIES

router = APIRouter(tags=["Open Inference Protocol (v2)"], include_in_schema=False)

SERVER_NAME = "penguin-classifier"
EXTENSIONS = ["binary_tensor_data"]
PLATFORMS = {"onnx": "onnxruntime_onnx", "sklearn": "sklearn"}
ModelName = Annotated[str, Path(description="A model from GET /models (any case), or 'best'")]
HeaderLength = Annotated[str | None, Header(alias=tensors.HEADER_LENGTH_HEADER)]
ContentEncoding = Annotated[str, Header()]
MAX_DESCRIBED_ISSUES = 5


@router.post("/v2/models/{name}/infer")
@router.post("/v2/models/{name}/versions/{version}/infer")
async def infer(
    name: ModelName,
    request: Request,
    catalog: CatalogDep,
    predictor: PredictorDep,
    request_id: RequestIdDep,
    header_length: HeaderLength = None,
    content_encoding: ContentEncoding = "identity",
    version: str | None = None,
) -> Response:
    """Predict N birds from one [N, 7] tensor or one [N] tensor per field (app.v2.tensors)."""
    if content_encoding.lower() != "identity":  # tritonclient compresses only when asked to
        raise InferenceRequestError(
            f"Content-Encoding {content_encoding[:40]!r} is not supported: send it uncompressed"
        )
    body = await request.body()
    args = (catalog, predictor, name, version, body, header_length, request_id)
    content, json_length = await run_in_threadpool(_infer, *args)
    headers = {REQUEST_ID_HEADER: request_id}
    if json_length is None:
        return Response(content, media_type="application/json", headers=headers)
    headers[tensors.HEADER_LENGTH_HEADER] = str(json_length)
    return Response(content, media_type="application/octet-stream", headers=headers)


def _infer(
    catalog: Catalog,
    predictor: Predictor,
    name: str,
    version: str | None,
    body: bytes,
    header_length: str | None,
    request_id: str,
) -> tuple[bytes, int | None]:
    model = _served_model(catalog, name, version)
    parsed = tensors.parse_request(body, header_length)
    predictor.check_batch_size(parsed.batch_size)
    rows = tensors.decode_rows(parsed)
    issues = check_rows(rows)
    if issues:
        described = "; ".join(issue.describe() for issue in issues[:MAX_DESCRIBED_ISSUES])
        more = len(issues) - MAX_DESCRIBED_ISSUES
        suffix = f"; and {more} more" if more > 0 else ""
        raise InferenceRequestError(f"Invalid input: {described}{suffix}")
    wanted = outputs.requested_outputs(parsed.request, model.has_probabilities)
    predictions = predictor.predict(model, rows, request_id, batch=len(rows) > 1)
    return outputs.encode_response(
        model.name,
        model.sha256,
        parsed.request.id or request_id,
        {"runtime": predictions.runtime},
        outputs.output_tensors(wanted, predictions.species_ids, predictions.probabilities),
    )


@router.get("/v2")
async def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name=SERVER_NAME, version=request.app.version, extensions=EXTENSIONS)


@router.get("/v2/health/live")
async def server_live() -> ServerLive:
    return ServerLive(live=True)


@router.get("/v2/health/ready", response_model=ServerReady)
async def server_ready(checks: ReadinessDep) -> JSONResponse:
    """Ready when GET /ready is; the spec: 200 means ready, a 4xx status not ready."""
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready}, status_code=200 if ready else 400)


@router.get("/v2/models/{name}/ready", response_model=ModelReady)
@router.get("/v2/models/{name}/versions/{version}/ready", response_model=ModelReady)
def model_ready(name: ModelName, catalog: CatalogDep, version: str | None = None) -> Any:
    """200 when the model predicts; 400 when its file cannot be served; 404 when unknown."""
    try:
        model = _served_model(catalog, name, version)
    except APIError as error:
        if error.status_code == 404:  # unknown model, or no 'best'
            raise
        return JSONResponse({"name": name, "ready": False, "error": error.message}, 400)
    return {"name": model.name, "ready": True}


@router.get("/v2/models/{name}")
@router.get("/v2/models/{name}/versions/{version}")
def model_metadata(
    name: ModelName, catalog: CatalogDep, version: str | None = None
) -> ModelMetadata:
    model = _served_model(catalog, name, version)
    assert model.runtime is not None
    output_tensors = [{"name": outputs.LABEL_OUTPUT, "datatype": "INT64", "shape": [-1]}]
    if model.has_probabilities:
        shape = [-1, len(SPECIES)]
        output_tensors.append(
            {"name": outputs.PROBABILITIES_OUTPUT, "datatype": "FP64", "shape": shape}
        )
    return ModelMetadata(
        name=model.name,
        versions=[model.sha256],
        platform=PLATFORMS[model.runtime.name],
        inputs=[{"name": "features", "datatype": "FP64", "shape": [-1, len(FEATURES)]}],
        outputs=output_tensors,
    )


def _served_model(catalog: Catalog, name: str, version: str | None) -> ServedModel:
    model = catalog.servable(name)
    if version is not None and version != model.sha256:
        raise UnknownVersionError(model.name, version, model.sha256)
    return model

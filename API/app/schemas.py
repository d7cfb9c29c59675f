"""Request and response bodies. The request fields and their ranges come from the contract."""

from collections.abc import Sequence
from types import MappingProxyType
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)

from app.models.loading import Status as ModelStatus
from app.models.runtimes import RuntimeName
from app.validation import check_rows
from penguin_contract import FEATURES, FIELDS, METRIC_COLUMNS, SPECIES, code_for
from penguin_contract import Field as ContractField

ADELIE_EXAMPLE: dict[str, Any] = {
    "island": 1,
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750,
    "sex": 1,
    "year": 2007,
}
GENTOO_READABLE_EXAMPLE: dict[str, Any] = {
    "island": "Biscoe",
    "bill_length_mm": 46.1,
    "bill_depth_mm": 13.2,
    "flipper_length_mm": 211,
    "body_mass_g": 4500,
    "sex": "female",
    "year": 2007,
}


def _integral(value: Any) -> Any:
    """2007.0 is a valid JSON Schema integer; bools and 2007.5 still fail the strict int check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _label_to_code(codes: MappingProxyType[int, str]):
    """Accept a readable label ('Biscoe', 'female', any case) in place of its code."""

    def convert(value: Any) -> Any:
        return code_for(codes, value) if isinstance(value, str) else _integral(value)

    return convert


def _feature_type(spec: ContractField) -> Any:
    if spec.codes is not None:
        description = f"{spec.description}: {spec.allowed()}; or the name, any case"
        return Annotated[
            int,
            BeforeValidator(_label_to_code(spec.codes)),
            Field(strict=True, ge=spec.minimum, le=spec.maximum),
            WithJsonSchema(
                {
                    "anyOf": [
                        {"type": "integer", "enum": list(spec.codes)},
                        {"type": "string", "enum": list(spec.codes.values())},
                    ],
                    "description": description,
                }
            ),
        ]
    if spec.kind == "integer":
        return Annotated[
            int,
            Field(
                strict=True,
                ge=spec.minimum,
                le=spec.maximum,
                description=f"{spec.description} ({spec.allowed()})",
            ),
            BeforeValidator(_integral),
        ]
    return Annotated[
        float,
        Field(
            strict=True,
            ge=spec.minimum,
            le=spec.maximum,
            allow_inf_nan=False,
            description=f"{spec.description} ({spec.allowed()})",
        ),
    ]


PenguinFeatures = create_model(
    "PenguinFeatures",
    __config__=ConfigDict(
        json_schema_extra={"examples": [ADELIE_EXAMPLE, GENTOO_READABLE_EXAMPLE]},
    ),
    __doc__="One bird's measurements, the contract's 7 fields. Extra fields are ignored.",
    **{spec.name: (_feature_type(spec), ...) for spec in FIELDS},
)


class BatchInstances(BaseModel):
    """Several birds as a list of objects; at most MAX_BATCH_SIZE rows (413 above it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": [ADELIE_EXAMPLE, GENTOO_READABLE_EXAMPLE]}]},
    )

    instances: list[PenguinFeatures] = Field(min_length=1)  # type: ignore[valid-type]

    def size(self) -> int:
        return len(self.instances)

    def rows(self) -> np.ndarray:
        """Float64 array, columns in the contract's FEATURES order."""
        return feature_rows(self.instances)


PenguinColumns = create_model(
    "PenguinColumns",
    __config__=ConfigDict(
        json_schema_extra={
            "examples": [
                {name: [ADELIE_EXAMPLE[name], GENTOO_READABLE_EXAMPLE[name]] for name in FEATURES}
            ]
        }
    ),
    __doc__="The same fields as PenguinFeatures, one list of values per field (equal lengths).",
    **{spec.name: (list[_feature_type(spec)], Field(min_length=1)) for spec in FIELDS},
)


class BatchColumns(BaseModel):
    """Several birds in columns: cheaper to send and to validate than a list of objects."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "columns": {
                        name: [ADELIE_EXAMPLE[name], GENTOO_READABLE_EXAMPLE[name]]
                        for name in FEATURES
                    }
                }
            ]
        },
    )

    columns: PenguinColumns  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _columns_have_equal_lengths(self) -> "BatchColumns":
        lengths = {name: len(getattr(self.columns, name)) for name in FEATURES}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"every column must have the same length; got {lengths}")
        return self

    def size(self) -> int:
        return len(getattr(self.columns, FEATURES[0]))

    def rows(self) -> np.ndarray:
        return np.column_stack(
            [np.asarray(getattr(self.columns, name), dtype=np.float64) for name in FEATURES]
        )


_NUMBER_TYPES = frozenset({int, float})


def checked_columns(data: Any) -> dict[str, np.ndarray] | None:
    """{field: float64 column} when ``data`` is {"columns": {...}} with every value valid,
    of equal lengths; else None (then pydantic says what is wrong). Vectorised: a 1000-row
    batch is a few NumPy passes."""
    if not isinstance(data, dict) or len(data) != 1 or not isinstance(data.get("columns"), dict):
        return None
    columns = {}
    for spec in FIELDS:
        values = data["columns"].get(spec.name)
        if type(values) is not list or not values:
            return None
        column = _numeric_column(spec, values)
        if column is None:
            return None
        columns[spec.name] = column
    if len({len(column) for column in columns.values()}) != 1:
        return None
    if check_rows(np.column_stack(list(columns.values()))):
        return None
    return columns


def _numeric_column(spec: ContractField, values: list[Any]) -> np.ndarray | None:
    """The values as float64 when all are JSON numbers (labels of coded fields converted)."""
    kinds = set(map(type, values))  # bool is not int here: strict fields refuse booleans
    if spec.codes is not None and str in kinds:
        convert = _label_to_code(spec.codes)
        try:
            values = [convert(value) for value in values]
        except ValueError:
            return None
        kinds = set(map(type, values))
    if not kinds <= _NUMBER_TYPES:
        return None
    try:
        return np.array(values, dtype=np.float64)
    except (OverflowError, ValueError):
        return None


def _batch_kind(body: Any) -> str:
    return "columns" if isinstance(body, dict) and "columns" in body else "instances"


# The body's shape picks the model, so errors name only what is wrong in that shape.
BatchRequest = Annotated[
    Annotated[BatchInstances, Tag("instances")] | Annotated[BatchColumns, Tag("columns")],
    Discriminator(_batch_kind),
]


def feature_rows(instances: Sequence[Any]) -> np.ndarray:
    """Validated PenguinFeatures as a float64 array, columns in the contract's FEATURES order."""
    return np.array(
        [[getattr(instance, name) for name in FEATURES] for instance in instances],
        dtype=np.float64,
    )


Metrics = create_model(
    "Metrics",
    __doc__="Metrics from the training report; null when no report row describes this file.",
    **{column: (float | None, Field(None, ge=0, le=1)) for column in METRIC_COLUMNS},
)

SpeciesName = Literal[tuple(SPECIES.values())]


class ModelSummary(BaseModel):
    name: str = Field(examples=["randomforest"])
    endpoint: str = Field(examples=["POST /classify/randomforest"])
    metrics: Metrics  # type: ignore[valid-type]
    status: ModelStatus = Field(description="ok, or why the file cannot be served")
    reason: str | None = Field(None, description="What is wrong when status is not ok")
    runtime: RuntimeName | None = Field(
        None, description="What answers: ONNX Runtime (the ONNX twin) or scikit-learn"
    )
    runtime_reason: str | None = Field(
        None, description="Why scikit-learn serves it (no ONNX twin, twin mismatched...)"
    )
    probabilities: bool = Field(False, description="Predictions carry class probabilities")
    trained_at: str | None = Field(None, description="From the report row of this file")
    best: bool = Field(False, description="This is the model 'best' resolves to")


class ModelsResponse(BaseModel):
    available_models: list[ModelSummary]


class ClassScores(BaseModel):
    precision: float = Field(ge=0, le=1)
    recall: float = Field(ge=0, le=1)
    f1: float = Field(ge=0, le=1)
    support: int = Field(ge=0, description="Test-set birds of this species")


class ModelDetail(ModelSummary):
    sha256: str = Field(description="SHA-256 of the served pickle file")
    file_size: int | None = Field(description="Bytes of the pickle file")
    sklearn_version: str | None = None
    estimator: str | None = None
    params: dict[str, Any] | None = None
    classes: list[int] | None = None
    feature_names: list[str] | None = None
    onnx: bool | None = Field(None, description="The trainer wrote an ONNX twin")
    onnx_reason: str | None = Field(None, description="Why the trainer wrote no ONNX twin")
    per_class: dict[str, ClassScores] | None = Field(
        None,
        description="Test-set precision, recall, f1 and support of each species, by name",
        examples=[{"Adelie": {"precision": 1.0, "recall": 0.97, "f1": 0.98, "support": 29}}],
    )
    report_matches_file: bool = Field(
        description="A report row has this file's sha256 (metrics and metadata describe it)"
    )


class Prediction(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "randomforest",
                    "species_id": 1,
                    "species_name": "Adelie",
                    "probabilities": {"Adelie": 0.99, "Chinstrap": 0.01, "Gentoo": 0.0},
                    "runtime": "onnx",
                }
            ]
        }
    )

    model: str = Field(description="The model that answered ('best' is resolved to its name)")
    species_id: int = Field(description="1 Adelie, 2 Chinstrap, 3 Gentoo")
    species_name: SpeciesName  # type: ignore[valid-type]
    probabilities: dict[str, float] | None = Field(
        None, description="By species name, when the model has predict_proba; else null"
    )
    runtime: RuntimeName = Field(description="What answered: onnx or sklearn")


class BatchPrediction(BaseModel):
    model: str
    request_id: str
    predictions: list[Prediction]


class ErrorResponse(BaseModel):
    detail: str
    code: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    field: str | None = Field(None, description="The request field at fault")
    msg: str
    type: str
    allowed: str | None = Field(None, description="The contract's allowed values")


class ValidationErrorResponse(BaseModel):
    detail: list[ValidationIssue] = Field(description="The first issues found (at most 20)")
    omitted: int = Field(0, description="How many more issues were found but not listed")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]


_BATCH = TypeAdapter(BatchRequest)
CHUNK_ROWS = 100


def validated_slice(
    body: Any, start: int, stop: int, wanted: int
) -> tuple[np.ndarray | None, list[dict], int]:
    """Rows [start, stop) of a batch body of either shape (the whole body when it is neither
    shape), validated: (their float64 array in FEATURES order, [], 0), or (None, up to
    ``wanted`` of their errors located as FastAPI locates them ("body", ..., row), how many
    there were). Errors that are not about a row are counted in the first slice."""
    try:
        batch = _BATCH.validate_python(_rows_slice(body, start, stop))
    except ValidationError as error:
        issues = error.errors(include_url=False)
        if start > 0:
            issues = [issue for issue in issues if _row_position(issue["loc"]) is not None]
        return None, [_shifted(issue, start) for issue in issues[: max(wanted, 0)]], len(issues)
    return batch.rows(), [], 0


def _rows_slice(body: Any, start: int, stop: int) -> Any:
    if not isinstance(body, dict):
        return body
    if isinstance(body.get("instances"), list):
        return {**body, "instances": body["instances"][start:stop]}
    if isinstance(body.get("columns"), dict):
        columns = body["columns"]
        sliced = {k: v[start:stop] if isinstance(v, list) else v for k, v in columns.items()}
        return {**body, "columns": sliced}
    return body


def _row_position(loc: tuple) -> int | None:
    """Where the row index is in an error's location (the first int), if it has one."""
    return next((i for i, part in enumerate(loc) if isinstance(part, int)), None)


def _shifted(issue: dict[str, Any], offset: int) -> dict[str, Any]:
    """The issue with its row index moved by ``offset``."""
    loc = list(issue["loc"])
    position = _row_position(issue["loc"])
    if position is not None:
        loc[position] += offset
    return {**issue, "loc": ("body", *loc)}


def batch_length(body: Any) -> int:
    """Rows in a batch body of either shape, counted without validating any of them (the
    longest column for the columnar shape); 0 for a body of neither shape."""
    if not isinstance(body, dict):
        return 0
    instances, columns = body.get("instances"), body.get("columns")
    if isinstance(instances, list):
        return len(instances)
    if isinstance(columns, dict):
        return max((len(v) for v in columns.values() if isinstance(v, list)), default=0)
    return 0


_SPECIES_NAMES = tuple(SPECIES.values())


def predictions_of(predictions: Any) -> list[dict[str, Any]]:
    """The service's Predictions (arrays) as Prediction bodies, one per row (validated and
    encoded by FastAPI against the declared response model)."""
    species_ids = predictions.species_ids.tolist()
    rows = (
        [dict(zip(_SPECIES_NAMES, row, strict=True)) for row in predictions.probabilities.tolist()]
        if predictions.probabilities is not None
        else [None] * len(species_ids)
    )
    return [
        {
            "model": predictions.model,
            "species_id": code,
            "species_name": SPECIES[code],
            "probabilities": probabilities,
            "runtime": predictions.runtime,
        }
        for code, probabilities in zip(species_ids, rows, strict=True)
    ]

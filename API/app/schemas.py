"""Request and response bodies. The request fields and their ranges come from the contract."""

from types import MappingProxyType
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_validator,
)

from app.models.loading import Status as ModelStatus
from app.models.runtimes import RuntimeName
from penguin_contract import FEATURES, FIELDS, METRIC_COLUMNS, SPECIES, code_for

CONTRACT = {spec.name: spec for spec in FIELDS}
ADELIE_EXAMPLE = dict(zip(FEATURES, (1, 39.1, 18.7, 181, 3750, 1, 2007), strict=True))
GENTOO_READABLE_EXAMPLE = dict(
    zip(FEATURES, ("Biscoe", 46.1, 13.2, 211, 4500, "female", 2007), strict=True)
)


def _integral(value: Any) -> Any:
    """2007.0 is a valid JSON Schema integer; bools and 2007.5 still fail the strict int check."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _code_or_name(codes: MappingProxyType[int, str]):
    def convert(value: Any) -> Any:
        return code_for(codes, value) if isinstance(value, str) else _integral(value)

    return convert


def _coded(name: str) -> Any:
    """A categorical field: its code, or its name in any case ('Biscoe', 'female')."""
    spec = CONTRACT[name]
    assert spec.codes is not None
    schema = {
        "anyOf": [
            {"type": "integer", "enum": list(spec.codes)},
            {"type": "string", "enum": list(spec.codes.values())},
        ],
        "description": f"{spec.description}: {spec.allowed()}; or the name, any case",
    }
    limits = Field(strict=True, ge=spec.minimum, le=spec.maximum)
    return Annotated[
        int, BeforeValidator(_code_or_name(spec.codes)), limits, WithJsonSchema(schema)
    ]


def _measured(name: str, kind: type) -> Any:
    """A number in the field's closed range (an integer field takes 2007.0 too)."""
    spec = CONTRACT[name]
    description = f"{spec.description} ({spec.allowed()})"
    limits = Field(strict=True, ge=spec.minimum, le=spec.maximum, description=description)
    if kind is int:
        return Annotated[int, limits, BeforeValidator(_integral)]
    return Annotated[float, limits, Field(allow_inf_nan=False)]


class PenguinFeatures(BaseModel):
    """One bird's measurements, the contract's 7 fields in its order. Extra fields are ignored."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [ADELIE_EXAMPLE, GENTOO_READABLE_EXAMPLE]}
    )

    island: _coded("island")
    bill_length_mm: _measured("bill_length_mm", float)
    bill_depth_mm: _measured("bill_depth_mm", float)
    flipper_length_mm: _measured("flipper_length_mm", float)
    body_mass_g: _measured("body_mass_g", float)
    sex: _coded("sex")
    year: _measured("year", int)

    def rows(self) -> np.ndarray:
        """The bird as a [1, 7] float64 array in FEATURES order."""
        return np.array([[getattr(self, name) for name in FEATURES]], dtype=np.float64)


_INSTANCES_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {"$ref": "#/components/schemas/PenguinFeatures"},
    "description": "Several birds as a list of objects",
}
_COLUMNS_SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "array", "items": {}, "minItems": 1} for name in FEATURES},
    "required": list(FEATURES),
    "description": "The same fields as PenguinFeatures, one list of values per field "
    "(equal lengths); cheaper to send and to check than a list of objects",
}


class BatchRequest(BaseModel):
    """Either `instances` or `columns`, at most MAX_BATCH_SIZE rows (413 above it). The rows
    are checked all at once by app.rows, not value by value here. Other keys are ignored,
    as extra fields of a bird are."""

    instances: Annotated[
        list[Any] | None, Field(min_length=1), WithJsonSchema(_INSTANCES_SCHEMA)
    ] = None
    columns: Annotated[dict[str, list[Any]] | None, WithJsonSchema(_COLUMNS_SCHEMA)] = None

    def size(self) -> int:
        """Rows, counted without checking any (the longest column)."""
        if self.instances is not None:
            return len(self.instances)
        return max(map(len, (self.columns or {}).values()), default=0)

    @model_validator(mode="after")
    def _one_shape(self) -> "BatchRequest":
        if (self.instances is None) == (self.columns is None):
            raise ValueError("give either instances or columns (one of them, not both)")
        return self


Metrics = create_model(
    "Metrics",
    __doc__="Metrics from the training report; null when no report row describes this file.",
    **{column: (float | None, Field(None, ge=0, le=1)) for column in METRIC_COLUMNS},
)
SpeciesName = Literal[tuple(SPECIES.values())]  # type: ignore[valid-type]


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
        None, description="Test-set precision, recall, f1 and support of each species, by name"
    )
    report_matches_file: bool = Field(
        description="A report row has this file's sha256 (metrics and metadata describe it)"
    )


class Prediction(BaseModel):
    model: str = Field(description="The model that answered ('best' is resolved to its name)")
    model_version: str = Field(description="SHA-256 of its pickle (GET /models/{name}/versions)")
    species_id: int = Field(description="1 Adelie, 2 Chinstrap, 3 Gentoo")
    species_name: SpeciesName
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

"""Documented error responses, their examples made by the errors themselves, and body examples."""

from typing import Any

from app.errors import (
    APIError,
    ModelNotFoundError,
    ModelUnavailableError,
    batch_too_large,
    validation_issue,
)
from app.schemas import (
    ADELIE_EXAMPLE,
    GENTOO_READABLE_EXAMPLE,
    ErrorResponse,
    ValidationErrorResponse,
)
from penguin_contract import FEATURES


def _error(description: str, example: APIError) -> dict[str, Any]:
    body = {"detail": example.message, "code": example.code}
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": body}},
    }


MODEL_NOT_FOUND = {404: _error("Unknown model (or an invalid name)", ModelNotFoundError("tree"))}
_INVALID_ISSUE = validation_issue(
    {
        "loc": ("body", "bill_length_mm"),
        "type": "less_than_equal",
        "input": 500,
        "msg": "Input should be less than or equal to 100",
    }
)
CLASSIFY_ERRORS = {
    **MODEL_NOT_FOUND,
    413: _error(
        "A batch above MAX_BATCH_SIZE (batch_too_large), or a body larger than MAX_BODY_BYTES "
        "(body_too_large)",
        batch_too_large(5000, 1000),
    ),
    422: {
        "model": ValidationErrorResponse,
        "description": "Missing field, wrong type, value out of range, NaN/Infinity, bad JSON",
        "content": {"application/json": {"example": {"detail": [_INVALID_ISSUE], "omitted": 0}}},
    },
    503: _error(
        "The model file exists but cannot be served (model_unavailable: corrupt, not a "
        "Pipeline, incompatible), or the prediction could not be written to the prediction "
        "log (prediction_not_logged), so it is not returned",
        ModelUnavailableError("svm", "the file cannot be unpickled (UnpicklingError: ...)"),
    ),
}
CLASSIFY_EXAMPLES = {
    "adelie_codes": {"summary": "Adelie, fields as codes", "value": ADELIE_EXAMPLE},
    "gentoo_names": {
        "summary": "Gentoo, island and sex as names",
        "value": GENTOO_READABLE_EXAMPLE,
    },
}
BATCH_EXAMPLES = {
    "instances": {
        "summary": "Two birds as a list of objects",
        "value": {"instances": [ADELIE_EXAMPLE, GENTOO_READABLE_EXAMPLE]},
    },
    "columns": {
        "summary": "The same two birds in columns",
        "value": {
            "columns": {
                name: [ADELIE_EXAMPLE[name], GENTOO_READABLE_EXAMPLE[name]] for name in FEATURES
            }
        },
    },
}

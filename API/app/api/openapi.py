"""Documented error responses (with examples) shared by the routes."""

from typing import Any

from app.schemas import (
    ADELIE_EXAMPLE,
    GENTOO_READABLE_EXAMPLE,
    ErrorResponse,
    ValidationErrorResponse,
)
from penguin_contract import FEATURES


def _error(description: str, detail: str, code: str) -> dict[str, Any]:
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {"application/json": {"example": {"detail": detail, "code": code}}},
    }


MODEL_NOT_FOUND = {
    404: _error(
        "Unknown model (or an invalid name)",
        "Model 'tree' not found. GET /models lists the available models "
        "('best' is the one with the highest test_f1).",
        "model_not_found",
    )
}
INVALID_INPUT = {
    422: {
        "model": ValidationErrorResponse,
        "description": "Missing field, wrong type, value out of range, NaN/Infinity, bad JSON",
        "content": {
            "application/json": {
                "example": {
                    "detail": [
                        {
                            "loc": ["body", "bill_length_mm"],
                            "field": "bill_length_mm",
                            "msg": "bill_length_mm: Input should be less than or equal to 100 "
                            "(allowed: 10 to 100)",
                            "type": "less_than_equal",
                            "allowed": "10 to 100",
                        }
                    ]
                }
            }
        },
    }
}
TOO_LARGE = {
    413: _error(
        "A batch above MAX_BATCH_SIZE (batch_too_large), or a body larger than MAX_BODY_BYTES "
        "(body_too_large)",
        "Batch of 5000 rows exceeds the maximum of 1000 rows per request.",
        "batch_too_large",
    )
}
UNAVAILABLE = {
    503: _error(
        "The model file exists but cannot be served (model_unavailable: corrupt, not a "
        "Pipeline, incompatible), or the prediction could not be written to the prediction "
        "log (prediction_not_logged), so it is not returned",
        "Model 'svm' cannot be used: the file cannot be unpickled (UnpicklingError: ...). "
        "Retrain it or remove its file; the other models keep working (GET /models).",
        "model_unavailable",
    )
}
CLASSIFY_ERRORS = {**MODEL_NOT_FOUND, **TOO_LARGE, **INVALID_INPUT, **UNAVAILABLE}

CLASSIFY_EXAMPLES = {
    "adelie_codes": {
        "summary": "Adelie, fields as codes (the original example)",
        "value": ADELIE_EXAMPLE,
    },
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

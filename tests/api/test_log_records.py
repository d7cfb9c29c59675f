"""Log lines and predictions encoded column by column: the same JSON a dict would give."""

import json

import numpy as np
import pytest

from app.errors import ModelUnavailableError
from app.log_records import encode_predictions, log_lines
from app.schemas import checked_columns
from penguin_contract import FEATURES

ROWS = np.array(
    [
        [1, 39.1, 18.7, 181, 3750, 1, 2007],
        [2, 0.1 + 0.2 + 40, 13.2, 211.5, 4500.25, 0, 2009],
    ],
    dtype=np.float64,
)
PROBABILITIES = np.array([[0.97, 1e-7, 0.03 - 1e-7], [0.0, 1 / 3, 2 / 3]])
NAMES = ("Adelie", "Chinstrap", "Gentoo")


def test_batch_log_lines_and_response_decode_to_the_exact_values():
    predictions = encode_predictions("randomforest", np.array([1, 3]), PROBABILITIES, NAMES)

    raw = log_lines(
        timestamp="2026-11-26T14:17:45.123+00:00",
        request_id="req-1",
        model_sha256="ab" * 32,
        rows=ROWS,
        predictions=predictions,
        latency_ms=1.25,
        batch=True,
    )

    lines = [json.loads(line) for line in raw.decode().splitlines()]
    assert raw.endswith(b"\n") and len(lines) == 2
    for index, line in enumerate(lines):
        expected_input = {
            name: int(value) if name in ("island", "sex", "year") else float(value)
            for name, value in zip(FEATURES, ROWS[index], strict=True)
        }
        assert line["input"] == expected_input
        assert [type(line["input"][name]) for name in ("island", "sex", "year")] == [int] * 3
        assert line["result"]["probabilities"] == dict(
            zip(NAMES, PROBABILITIES[index], strict=True)
        )
        assert (line["batch_index"], line["batch_size"]) == (index, 2)
        assert (line["request_id"], line["model"], line["latency_ms"]) == (
            "req-1",
            "randomforest",
            1.25,
        )
    body = json.loads(predictions.batch_json("req-1"))
    assert body["request_id"] == "req-1"
    assert [p["species_name"] for p in body["predictions"]] == ["Adelie", "Gentoo"]
    assert body["predictions"][1] == {"model": "randomforest", **lines[1]["result"]}


def test_single_prediction_without_probabilities():
    predictions = encode_predictions("svm", np.array([2]), None, NAMES)

    assert json.loads(predictions.prediction_json()) == {
        "model": "svm",
        "species_id": 2,
        "species_name": "Chinstrap",
        "probabilities": None,
    }


def test_probabilities_that_are_not_finite_are_refused():
    with pytest.raises(ModelUnavailableError, match="not finite"):
        encode_predictions("m", np.array([1]), np.array([[np.nan, 0.5, 0.5]]), NAMES)


def _columns(**changes):
    columns = {name: [value, value] for name, value in zip(FEATURES, ROWS[0].tolist(), strict=True)}
    return {"columns": {**columns, **changes}}


def test_valid_columns_are_checked_without_pydantic_and_accept_names():
    checked = checked_columns(_columns(island=["biscoe", 3], sex=["MALE", 0.0]))

    assert checked is not None
    assert checked["island"].tolist() == [2, 3]
    assert checked["sex"].tolist() == [1, 0]


@pytest.mark.parametrize(
    "change",
    [
        {"bill_depth_mm": [18.7, 99]},
        {"bill_depth_mm": [18.7, float("nan")]},
        {"body_mass_g": [3750, float("inf")]},
        {"year": [2007, 2007.5]},
        {"sex": [True, 1]},
        {"island": ["Atlantis", 1]},
        {"bill_length_mm": ["39.1", 40]},
        {"year": [2007]},
        {"year": []},
    ],
)
def test_anything_invalid_is_left_to_pydantic(change):
    assert checked_columns(_columns(**change)) is None

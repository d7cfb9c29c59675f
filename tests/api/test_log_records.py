"""Log lines and predictions encoded column by column: the same JSON a dict would give."""

import json

import numpy as np
import pytest

from app.log_records import log_lines
from app.prediction_log import LINE_PREFIX
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


def _lines(labels, probabilities, batch: bool) -> list[dict]:
    raw = log_lines(
        timestamp="2026-11-26T14:17:45.123+00:00",
        request_id="req-1",
        model="randomforest",
        model_sha256="ab" * 32,
        runtime="onnx",
        rows=ROWS[: len(labels)],
        labels=np.array(labels),
        probabilities=probabilities,
        latency_ms=1.25,
        batch=batch,
    )
    assert raw.endswith(b"\n") and raw.startswith(LINE_PREFIX)
    return [json.loads(line) for line in raw.decode().splitlines()]


def test_batch_log_lines_decode_to_the_exact_values():
    lines = _lines([1, 3], PROBABILITIES, batch=True)

    assert len(lines) == 2
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
        assert (line["request_id"], line["model"], line["latency_ms"], line["runtime"]) == (
            "req-1",
            "randomforest",
            1.25,
            "onnx",
        )
    assert [line["result"]["species_name"] for line in lines] == ["Adelie", "Gentoo"]


def test_single_line_without_probabilities():
    [line] = _lines([2], None, batch=False)

    assert line["result"] == {"species_id": 2, "species_name": "Chinstrap", "probabilities": None}
    assert "batch_index" not in line


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


@pytest.mark.parametrize("with_probabilities", [True, False])
def test_a_single_rows_line_is_byte_for_byte_the_column_encoders_line(with_probabilities):
    """A single prediction's line is encoded from a dict, a batch's column by column: both
    encoders must give the same bytes (a 1-row batch without its batch fields)."""
    rng = np.random.default_rng(7)
    fields = {
        "timestamp": "2026-11-26T14:17:45.123+00:00",
        "request_id": "req-1",
        "model": "svm",
        "model_sha256": "ab" * 32,
        "runtime": "onnx",
        "latency_ms": 0.1 + 0.2,
    }
    for _ in range(200):
        row = np.array(
            [
                [
                    rng.integers(1, 4),
                    rng.uniform(10, 100),
                    rng.uniform(5, 35),
                    rng.uniform(100, 300),
                    rng.uniform(1000, 10000),
                    rng.integers(0, 2),
                    rng.integers(2000, 2031),
                ]
            ],
            dtype=np.float64,
        )
        label = np.array([rng.integers(1, 4)])
        probabilities = rng.dirichlet([1, 1, 1], 1) if with_probabilities else None
        fields.update(rows=row, labels=label, probabilities=probabilities)
        single = log_lines(batch=False, **fields)
        batch = log_lines(batch=True, **fields)
        assert batch == single.removesuffix(b"}\n") + b',"batch_index":0,"batch_size":1}\n'

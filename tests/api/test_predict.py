"""app.predict: one path for one row, a batch and v2 — predict, log, count — and its log lines."""

import json

import numpy as np
import pytest
from support.api import body_from_row, read_log
from support.models import penguins

from app.errors import ModelUnavailableError, PredictionLogError
from app.main import create_app
from app.predict import Predictions, log_lines
from app.prediction_log import LINE_PREFIX
from app.schemas import PenguinFeatures
from penguin_contract import FEATURES

MODELS = ("randomforest", "svm", "gradientboosting")
ROWS = np.array(
    [[1, 39.1, 18.7, 181, 3750, 1, 2007], [2, 0.1 + 0.2 + 40, 13.2, 211.5, 4500.25, 0, 2009]],
    dtype=np.float64,
)
PROBABILITIES = np.array([[0.97, 1e-7, 0.03 - 1e-7], [0.0, 1 / 3, 2 / 3]])
NAMES = ("Adelie", "Chinstrap", "Gentoo")


def _parts(settings):
    app = create_app(settings)
    return app.state.catalog, app.state.predictor


def _birds() -> np.ndarray:
    """Every bird of the data set, each validated as /classify validates one."""
    return np.concatenate(
        [PenguinFeatures(**body_from_row(row)).rows() for _, row in penguins().iterrows()]
    )


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_a_batch_gives_exactly_the_answers_each_row_gets_alone(settings, model_store, runtime):
    if runtime == "sklearn":  # without their ONNX twins the pipelines serve
        for twin in model_store.models_dir.glob("*.onnx"):
            twin.unlink()
    catalog, predictor = _parts(settings)
    birds = _birds()
    for name in MODELS:
        model = catalog.servable(name)
        together = predictor.predict_and_wait(model, birds, "together", batch=True)
        alone = [
            predictor.predict_and_wait(model, bird[None, :], "alone", batch=False) for bird in birds
        ]
        assert together.runtime == runtime
        np.testing.assert_array_equal(
            together.species_ids, np.concatenate([one.species_ids for one in alone])
        )
        if together.probabilities is not None:
            np.testing.assert_array_equal(
                together.probabilities, np.concatenate([one.probabilities for one in alone])
            )
    logged = read_log(settings.predictions_log_path)
    assert len(logged) == 2 * len(MODELS) * len(birds)


def test_non_finite_probabilities_are_a_503_and_nothing_is_logged_or_counted(settings):
    catalog, predictor = _parts(settings)
    model = catalog.servable("randomforest")
    predict = model.runtime.predict

    def broken(rows):
        labels, probabilities = predict(rows)
        return labels, probabilities * np.nan

    model.runtime.predict = broken  # type: ignore[method-assign, union-attr]

    with pytest.raises(ModelUnavailableError) as raised:
        predictor.predict_and_wait(model, _birds()[:3], "x", batch=True)

    assert raised.value.status_code == 503
    assert read_log(settings.predictions_log_path) == []
    assert predictor.counter.labels("randomforest", "Adelie")._value.get() == 0


def test_a_log_that_cannot_be_written_returns_and_counts_nothing(settings):
    settings.predictions_log_path.mkdir()  # not a regular file
    catalog, predictor = _parts(settings)

    with pytest.raises(PredictionLogError):
        predictor.predict_and_wait(catalog.servable("svm"), _birds()[:2], "x", batch=False)

    assert predictor.counter.labels("svm", "Adelie")._value.get() == 0


def _lines(labels, probabilities, batch: bool) -> list[dict]:
    predictions = Predictions("randomforest", "0" * 64, "onnx", np.array(labels), probabilities)
    head = {
        "timestamp": "2026-11-26T14:17:45.123+00:00",
        "request_id": "req-%1",
        "model": "randomforest",
        "model_sha256": "ab" * 32,
        "runtime": "onnx",
    }
    raw = log_lines(head, ROWS[: len(labels)], predictions, 1.25, batch)
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
        assert (line["request_id"], line["model"], line["latency_ms"]) == (
            "req-%1",
            "randomforest",
            1.25,
        )
    assert [line["result"]["species_name"] for line in lines] == ["Adelie", "Gentoo"]


def test_a_single_line_has_no_batch_fields_and_may_lack_probabilities():
    [line] = _lines([2], None, batch=False)

    assert line["result"] == {"species_id": 2, "species_name": "Chinstrap", "probabilities": None}
    assert "batch_index" not in line and "batch_size" not in line
    assert list(line) == [
        "timestamp",
        "request_id",
        "model",
        "model_sha256",
        "runtime",
        "input",
        "result",
        "latency_ms",
    ]

"""app.service: the single predictions of one event-loop turn are made and logged together,
and give exactly what each would give alone."""

import asyncio
import fcntl
import os
import threading

import numpy as np
import pytest
from support.api import body_from_row, read_log
from support.models import penguins

from app.errors import ModelUnavailableError, PredictionLogError
from app.main import create_app
from app.prediction_log import PredictionLog
from app.schemas import PenguinFeatures, feature_rows
from app.service import Predictions, PredictionService

MODELS = ("randomforest", "svm", "gradientboosting")


def _birds() -> list[np.ndarray]:
    """Every bird of the data set as the route gives it to the service: one validated row."""
    return [
        feature_rows([PenguinFeatures(**body_from_row(row))]) for _, row in penguins().iterrows()
    ]


def _service(settings) -> PredictionService:
    return create_app(settings).state.service


async def _single(service: PredictionService, name: str, row: np.ndarray, request_id: str):
    model = await service.model_for(name)
    return await service.predict(model, row, request_id, 0.0, batch=False)


@pytest.fixture
def appends(monkeypatch) -> list[int]:
    """The size in lines of every append the prediction log is asked for."""
    sizes: list[int] = []
    try_append = PredictionLog.try_append

    def counted(self, lines: bytes) -> bool:
        sizes.append(lines.count(b"\n"))
        return try_append(self, lines)

    monkeypatch.setattr(PredictionLog, "try_append", counted)
    return sizes


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_predictions_made_together_are_exactly_those_made_alone(
    settings, model_store, appends, runtime
):
    if runtime == "sklearn":  # without their ONNX twins the pipelines serve
        for twin in model_store.models_dir.glob("*.onnx"):
            twin.unlink()
    service, birds = _service(settings), _birds()

    async def alone_then_together() -> tuple[list, list]:
        alone = [await _single(service, m, row, "alone") for m in MODELS for row in birds]
        appends.clear()
        together = await asyncio.gather(
            *(_single(service, m, row, "together") for m in MODELS for row in birds)
        )
        return alone, together

    alone, together = asyncio.run(alone_then_together())

    assert appends == [len(MODELS) * len(birds)]  # one turn, one append
    for one, other in zip(alone, together, strict=True):
        assert one.runtime == other.runtime == runtime
        np.testing.assert_array_equal(one.species_ids, other.species_ids)
        if one.probabilities is None:
            assert other.probabilities is None
        else:
            np.testing.assert_array_equal(one.probabilities, other.probabilities)
    logged = read_log(settings.predictions_log_path)
    assert [line["request_id"] for line in logged].count("together") == len(together)


DREAM = 3  # island code


@pytest.mark.parametrize("failure", ["not finite", "raises"])
def test_a_request_fails_only_if_it_would_fail_alone(settings, failure):
    """gradientboosting made to fail on birds from Dream, in the same turn as other birds
    and as svm requests."""
    service, birds = _service(settings), _birds()
    birds = [row for row in birds if row[0, 0] == DREAM][:4] + birds[:6]
    expected_failure = ModelUnavailableError if failure == "not finite" else ValueError

    async def gradientboosting_broken_on_dream() -> tuple[list, list]:
        alone = [await _single(service, "gradientboosting", row, "alone") for row in birds]
        runtime = (await service.model_for("gradientboosting")).runtime
        predict = runtime.predict

        def broken(rows: np.ndarray):
            dream = rows[:, 0] == DREAM
            if failure == "raises" and dream.any():
                raise ValueError("cannot predict birds from Dream")
            labels, probabilities = predict(rows)
            probabilities[dream] = np.nan
            return labels, probabilities

        runtime.predict = broken  # type: ignore[method-assign, union-attr]
        together = await asyncio.gather(
            *(_single(service, m, row, m) for m in ("gradientboosting", "svm") for row in birds),
            return_exceptions=True,
        )
        return alone, together

    alone, together = asyncio.run(gradientboosting_broken_on_dream())

    for row, before, outcome in zip(birds, alone, together[: len(birds)], strict=True):
        if row[0, 0] == DREAM:
            assert isinstance(outcome, expected_failure)
        else:
            np.testing.assert_array_equal(outcome.probabilities, before.probabilities)
    assert all(isinstance(o, Predictions) for o in together[len(birds) :])
    together_lines = [line for line in read_log(settings.predictions_log_path)[len(birds) :]]
    not_dream = sum(row[0, 0] != DREAM for row in birds)
    assert sorted(line["model"] for line in together_lines) == sorted(
        ["gradientboosting"] * not_dream + ["svm"] * len(birds)
    )


def test_a_log_that_cannot_be_written_fails_every_request_of_the_turn(settings):
    settings.predictions_log_path.mkdir()  # not a regular file
    service, birds = _service(settings), _birds()[:5]

    async def together() -> list:
        return await asyncio.gather(
            *(_single(service, m, row, "x") for m in MODELS for row in birds),
            return_exceptions=True,
        )

    outcomes = asyncio.run(together())

    assert len(outcomes) == len(MODELS) * len(birds)
    assert all(isinstance(o, PredictionLogError) for o in outcomes)


def test_a_turn_waits_off_the_loop_for_a_log_locked_by_another_process(settings):
    settings = settings.model_copy(update={"log_lock_timeout_s": 5})
    service, birds = _service(settings), _birds()[:3]
    path = settings.predictions_log_path
    other = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other, fcntl.LOCK_EX)
    released = threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN))

    async def while_locked() -> tuple[list, int]:
        for name in MODELS:  # loaded before the clock starts
            await service.model_for(name)
        released.start()
        predictions = asyncio.gather(*(_single(service, "svm", row, "x") for row in birds))
        ticks = 0
        while not predictions.done():  # the loop keeps running while the lock is held
            ticks += 1
            await asyncio.sleep(0.01)
        return await predictions, ticks

    try:
        outcomes, ticks = asyncio.run(while_locked())
    finally:
        released.join()
        os.close(other)
    assert all(isinstance(o, Predictions) for o in outcomes)
    assert ticks >= 10
    assert len(read_log(path)) == len(birds)

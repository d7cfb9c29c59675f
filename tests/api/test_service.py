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


def test_a_failing_model_fails_only_its_own_requests(settings):
    service, birds = _service(settings), _birds()[:10]

    async def gradientboosting_broken() -> list:
        broken = await service.model_for("gradientboosting")

        def not_finite(rows: np.ndarray):
            return np.ones(len(rows), dtype=np.int64), np.full((len(rows), 3), np.nan)

        broken.runtime.predict = not_finite  # type: ignore[method-assign, union-attr]
        return await asyncio.gather(
            *(_single(service, m, row, m) for m in ("gradientboosting", "svm") for row in birds),
            return_exceptions=True,
        )

    outcomes = asyncio.run(gradientboosting_broken())

    assert all(isinstance(o, ModelUnavailableError) for o in outcomes[: len(birds)])
    assert all(isinstance(o, Predictions) for o in outcomes[len(birds) :])
    logged = read_log(settings.predictions_log_path)
    assert [line["model"] for line in logged] == ["svm"] * len(birds)


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

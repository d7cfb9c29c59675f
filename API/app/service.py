"""Use cases: resolve a model name (incl. 'best'), predict, log, count, describe.

Routes (REST and Open Inference Protocol alike) only translate HTTP to these calls. The
model state belongs to the registry (app.models.registry) and the metrics to the report
(app.report); everything here is derived from them on each call.
"""

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter as PrometheusCounter
from starlette.concurrency import run_in_threadpool

from app.errors import (
    BatchTooLargeError,
    ModelNotFoundError,
    ModelUnavailableError,
    NoBestModelError,
    PredictionLogError,
)
from app.log_records import log_lines
from app.models.loading import ServedModel
from app.models.registry import ModelRegistry
from app.models.runtimes import RuntimeName
from app.prediction_log import PredictionLog, utc_timestamp
from app.report import EMPTY_METRICS, MetricsReport, ReportRow, ReportRows
from app.schemas import ModelDetail, ModelsResponse, ModelSummary
from app.turn_batch import TurnBatch
from penguin_contract import RESERVED_MODEL_NAMES, SPECIES, normalize_model_name

BEST_ALIAS = "best"
# Report metadata shown by GET /models/{name} (trained_at is in every summary).
DETAIL_METADATA = (
    "sklearn_version",
    "estimator",
    "params",
    "classes",
    "feature_names",
    "onnx",
    "onnx_reason",
    "per_class",
)
assert BEST_ALIAS in RESERVED_MODEL_NAMES


@dataclass(frozen=True, slots=True)
class Predictions:
    """A request's answers: species codes [N] and probabilities [N, 3] in SPECIES order."""

    model: str
    runtime: RuntimeName
    species_ids: np.ndarray
    probabilities: np.ndarray | None

    def rows(self, start: int, stop: int) -> "Predictions":
        probabilities = None if self.probabilities is None else self.probabilities[start:stop]
        return Predictions(self.model, self.runtime, self.species_ids[start:stop], probabilities)


@dataclass(frozen=True, slots=True)
class SinglePrediction:
    """A request for one prediction, waiting for the others of its event-loop turn."""

    model: ServedModel
    rows: np.ndarray
    request_id: str
    started: float


class PredictionService:
    def __init__(
        self,
        registry: ModelRegistry,
        report: MetricsReport,
        log: PredictionLog,
        predictions_counter: PrometheusCounter,
        max_batch_size: int,
    ) -> None:
        self.registry = registry
        self.report = report
        self.log = log
        self._singles: TurnBatch[SinglePrediction, Predictions] = TurnBatch(
            self._predict_and_log_singles
        )
        self.predictions_counter = predictions_counter
        self.max_batch_size = max_batch_size
        self._listing: tuple[tuple, bytes] | None = None

    async def model_for(self, requested: str) -> ServedModel:
        """The usable model named ``requested`` (any case, or 'best'); loads off the loop."""
        if requested.strip().lower() == BEST_ALIAS:
            return self._require_usable(await self._best_model())
        try:
            name = normalize_model_name(requested)
        except ValueError:
            raise ModelNotFoundError(requested) from None
        model = self.registry.loaded(name) or await run_in_threadpool(self.registry.get, name)
        return self._require_usable(model)

    def check_batch_size(self, size: int) -> None:
        if size > self.max_batch_size:
            raise BatchTooLargeError(size, self.max_batch_size)

    async def predict(
        self, model: ServedModel, rows: np.ndarray, request_id: str, started: float, batch: bool
    ) -> Predictions:
        """Predict every row (validated, FEATURES order), log one line per row, count them.

        A batch is predicted and logged in a worker thread. A single prediction is made on
        the event loop (microseconds with ONNX Runtime), together with the others of the
        loop's turn: one runtime call per model and one log append for all (app.turn_batch).
        """
        if batch:
            return await run_in_threadpool(self._predict_and_log, model, rows, request_id, started)
        return await self._singles.submit(SinglePrediction(model, rows, request_id, started))

    async def listing_json(self) -> bytes:
        """GET /models' body, encoded once per state of the model files and the report.

        Building and encoding the listing of 100 models costs about a millisecond; looking at
        the state (one inotify read, one stat of the report) a few microseconds. The state is
        taken before the build, so a change during the build makes the next request rebuild.
        """
        state = (self.registry.version(), self.report.source())
        if self._listing is not None and self._listing[0] == state:
            return self._listing[1]
        body = ModelsResponse(available_models=await self.summaries()).model_dump_json()
        self._listing = (state, body.encode())
        return self._listing[1]

    async def summaries(self) -> list[ModelSummary]:
        """Every model file by name, with its status, runtime and report metrics."""
        models = await self._current_models()
        rows = self.report.rows_by_file()
        best = self._best_of(models, rows)
        return [self._summary(model, best, rows) for model in models]

    async def describe(self, requested: str) -> ModelDetail:
        if requested.strip().lower() == BEST_ALIAS:
            model = await self._best_model()
        else:
            try:
                name = normalize_model_name(requested)
            except ValueError:
                raise ModelNotFoundError(requested) from None
            model = self.registry.loaded(name) or await run_in_threadpool(self.registry.get, name)
        rows = self.report.rows_by_file()
        best = self._best_of(await self._current_models(), rows)
        row = rows.get((model.name, model.sha256))
        return ModelDetail(
            **self._summary(model, best, rows).model_dump(),
            **_metadata(row),
            sha256=model.sha256,
            file_size=model.entry.pkl.size if model.entry.pkl else None,
            report_matches_file=row is not None,
        )

    def _predict_and_log(
        self, model: ServedModel, rows: np.ndarray, request_id: str, started: float
    ) -> Predictions:
        predictions = _finite(model, self._predicted(model, rows))
        if isinstance(predictions, ModelUnavailableError):
            raise predictions
        self.log.append(self._log_lines(model, rows, predictions, request_id, started, True))
        self._count(predictions)
        return predictions

    async def _predict_and_log_singles(
        self, singles: list[SinglePrediction]
    ) -> list[Predictions | BaseException]:
        """Each model's rows in one runtime call, then every line in one append. A request
        fails only if it would have failed alone, except when the log cannot be written:
        then they all fail."""
        outcomes: list[Predictions | BaseException] = [None] * len(singles)  # type: ignore[list-item]
        lines = []
        for indices in _indices_by_model(singles):
            group = [singles[index] for index in indices]
            for index, single, outcome in zip(
                indices, group, self._predict_group(group), strict=True
            ):
                outcomes[index] = outcome
                if isinstance(outcome, Predictions):
                    lines.append(
                        self._log_lines(
                            single.model,
                            single.rows,
                            outcome,
                            single.request_id,
                            single.started,
                            batch=False,
                        )
                    )
        if lines:
            try:
                await self._append_on_loop(b"".join(lines))
            except PredictionLogError as error:
                return [error if isinstance(o, Predictions) else o for o in outcomes]
        for outcome in outcomes:
            if isinstance(outcome, Predictions):
                self._count(outcome)
        return outcomes

    def _predict_group(self, group: list[SinglePrediction]) -> list[Predictions | Exception]:
        """The predictions of requests for one model, from one runtime call; should that
        call fail, from one call per request, so that only a request that fails alone fails."""
        model = group[0].model
        if len(group) == 1:
            return [self._predicted_alone(model, group[0].rows)]
        try:
            predicted = self._predicted(model, np.concatenate([single.rows for single in group]))
        except Exception:
            return [self._predicted_alone(model, single.rows) for single in group]
        stops = np.cumsum([len(single.rows) for single in group]).tolist()
        return [
            _finite(model, predicted.rows(stop - len(single.rows), stop))
            for single, stop in zip(group, stops, strict=True)
        ]

    def _predicted_alone(self, model: ServedModel, rows: np.ndarray) -> Predictions | Exception:
        try:
            return _finite(model, self._predicted(model, rows))
        except Exception as error:
            return error

    async def _append_on_loop(self, lines: bytes) -> None:
        """Append on the event loop, or in a worker thread if that would wait for a lock."""
        if self.log.fsync or not self.log.try_append(lines):
            await run_in_threadpool(self.log.append, lines)

    @staticmethod
    def _predicted(model: ServedModel, rows: np.ndarray) -> Predictions:
        runtime = model.runtime
        assert runtime is not None
        labels, probabilities = runtime.predict(rows)
        return Predictions(model.name, runtime.name, labels, probabilities)

    @staticmethod
    def _log_lines(
        model: ServedModel,
        rows: np.ndarray,
        predictions: Predictions,
        request_id: str,
        started: float,
        batch: bool,
    ) -> bytes:
        return log_lines(
            timestamp=utc_timestamp(),
            request_id=request_id,
            model=model.name,
            model_sha256=model.sha256,
            runtime=predictions.runtime,
            rows=rows,
            labels=predictions.species_ids,
            probabilities=predictions.probabilities,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            batch=batch,
        )

    def _count(self, predictions: Predictions) -> None:
        codes = predictions.species_ids.tolist()
        counts = {codes[0]: 1} if len(codes) == 1 else Counter(codes)
        for species, count in counts.items():
            self.predictions_counter.labels(predictions.model, SPECIES[species]).inc(count)

    async def _current_models(self) -> list[ServedModel]:
        loaded = self.registry.all_loaded()
        return loaded if loaded is not None else await run_in_threadpool(self.registry.load_all)

    async def _best_model(self) -> ServedModel:
        best = self._best_of(await self._current_models(), self.report.rows_by_file())
        if best is None:
            raise NoBestModelError()
        return best

    @staticmethod
    def _best_of(models: list[ServedModel], rows: ReportRows) -> ServedModel | None:
        """The usable model with the highest test_f1 in a report row that describes its
        file; ties go to the first name."""
        scored = []
        for model in models:
            row = rows.get((model.name, model.sha256))
            if model.usable and row is not None and row.test_f1 is not None:
                scored.append((-row.test_f1, model.name, model))
        return min(scored, key=lambda item: item[:2])[2] if scored else None

    @staticmethod
    def _summary(model: ServedModel, best: ServedModel | None, rows: ReportRows) -> ModelSummary:
        row = rows.get((model.name, model.sha256))
        runtime_reason = model.runtime_reason
        if runtime_reason and row is not None and row.metadata.get("onnx_reason"):
            runtime_reason = f"{runtime_reason}: {row.metadata['onnx_reason']}"
        return ModelSummary(
            name=model.name,
            endpoint=f"POST /classify/{model.name}",
            metrics=row.metrics if row is not None else EMPTY_METRICS,
            status=model.status,
            reason=model.reason,
            runtime=model.runtime.name if model.runtime is not None else None,
            runtime_reason=runtime_reason,
            probabilities=model.has_probabilities,
            trained_at=row.metadata.get("trained_at") if row is not None else None,
            best=best is not None and best.name == model.name,
        )

    @staticmethod
    def _require_usable(model: ServedModel) -> ServedModel:
        if not model.usable:
            raise ModelUnavailableError(model.name, model.reason or model.status)
        return model


def _finite(model: ServedModel, predictions: Predictions) -> Predictions | ModelUnavailableError:
    """``predictions``, or the error to answer if any of its probabilities is not finite."""
    if predictions.probabilities is not None and not np.isfinite(predictions.probabilities).all():
        return ModelUnavailableError(model.name, "it returned probabilities that are not finite")
    return predictions


def _indices_by_model(singles: list[SinglePrediction]) -> list[list[int]]:
    """The positions of ``singles``, grouped by the loaded model each was given."""
    groups: dict[int, list[int]] = {}
    for index, single in enumerate(singles):
        groups.setdefault(id(single.model), []).append(index)
    return list(groups.values())


def _metadata(row: ReportRow | None) -> dict:
    if row is None:
        return {}
    return {key: row.metadata.get(key) for key in DETAIL_METADATA}

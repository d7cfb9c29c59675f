"""Prediction use cases: resolve a model name, predict, log, count. Routes only delegate here."""

import time
from collections import Counter

import numpy as np
import sklearn
from prometheus_client import Counter as PrometheusCounter
from starlette.concurrency import run_in_threadpool

from app.errors import BatchTooLargeError, ModelNotFoundError, NoBestModelError
from app.log_records import EncodedPredictions, encode_predictions, log_lines
from app.prediction_log import PredictionLog, utc_timestamp
from app.report import MetricsReport
from app.repository import LoadedModel, ModelRepository
from penguin_contract import RESERVED_MODEL_NAMES, SPECIES, normalize_model_name

BEST_ALIAS = "best"
assert BEST_ALIAS in RESERVED_MODEL_NAMES


class PredictionService:
    def __init__(
        self,
        repository: ModelRepository,
        report: MetricsReport,
        log: PredictionLog,
        predictions_counter: PrometheusCounter,
        max_batch_size: int,
    ) -> None:
        self.repository = repository
        self.report = report
        self.log = log
        self.predictions_counter = predictions_counter
        self.max_batch_size = max_batch_size

    async def model_for(self, requested: str) -> LoadedModel:
        """The usable model named ``requested`` (any case, or 'best'); loads off the event loop."""
        if requested.strip().lower() == BEST_ALIAS:
            return await run_in_threadpool(self.best_model)
        try:
            name = normalize_model_name(requested)
        except ValueError:
            raise ModelNotFoundError(requested) from None
        model = self.repository.cached(name)
        if model is None:
            model = await run_in_threadpool(self.repository.get, name)
        model.require_usable()
        return model

    def best_model(self) -> LoadedModel:
        """Highest test_f1 in the report among usable model files; ties by name. Stateless."""
        discovered = self.repository.discover()
        rows = self.report.rows()
        scored = [
            (rows[name].test_f1, name)
            for name in discovered
            if name in rows and rows[name].test_f1 is not None
        ]
        for _, name in sorted(scored, key=lambda pair: (-pair[0], pair[1])):
            try:
                model = self.repository.get(name, discovered[name])
            except ModelNotFoundError:  # deleted since the listing
                continue
            if model.usable:
                return model
        raise NoBestModelError()

    def check_batch_size(self, size: int) -> None:
        if size > self.max_batch_size:
            raise BatchTooLargeError(size, self.max_batch_size)

    def classify(
        self,
        model: LoadedModel,
        rows: np.ndarray,
        request_id: str,
        started: float,
        batch: bool = False,
    ) -> EncodedPredictions:
        """Predict every row (FEATURES order), append their log lines in one write, count them."""
        # The request schema already refuses NaN and infinity; scikit-learn's second check of
        # every input array costs ~10 % of a single-row prediction.
        with sklearn.config_context(assume_finite=True):
            labels, probabilities = model.predict(rows)
        predictions = encode_predictions(model.name, labels, probabilities, model.class_names)
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self.log.append(
            log_lines(
                timestamp=utc_timestamp(),
                request_id=request_id,
                model_sha256=model.sha256,
                rows=rows,
                predictions=predictions,
                latency_ms=latency_ms,
                batch=batch,
            )
        )
        self._count(model.name, predictions.species_ids)
        return predictions

    def _count(self, model_name: str, species_ids: list[int]) -> None:
        for species, count in Counter(species_ids).items():
            self.predictions_counter.labels(model_name, SPECIES[species]).inc(count)

"""What the API can serve: resolve a name (any case, or 'best'), list and describe models,
derived on each call from the registry (models) and the report (metrics). Reads files."""

from starlette.concurrency import run_in_threadpool

from app.errors import ModelNotFoundError, ModelUnavailableError
from app.models.loading import ServedModel
from app.models.registry import ModelRegistry, NotLoadedError
from app.report import EMPTY_METRICS, MetricsReport, ReportRows
from app.schemas import ModelDetail, ModelSummary
from penguin_contract import RESERVED_MODEL_NAMES, normalize_model_name

BEST_ALIAS = "best"
NO_BEST = "cannot be resolved: no usable model has a test_f1 in the metrics report"
assert BEST_ALIAS in RESERVED_MODEL_NAMES
# Report metadata shown by GET /models/{name} (trained_at is in every summary).
DETAIL_METADATA = ("sklearn_version", "estimator", "params", "classes", "feature_names")
DETAIL_METADATA += ("onnx", "onnx_reason", "per_class")


class Catalog:
    def __init__(self, registry: ModelRegistry, report: MetricsReport) -> None:
        self.registry = registry
        self.report = report

    async def model_for(self, requested: str) -> ServedModel:
        """``servable``, from a worker thread only if the model's files must be read."""
        try:
            return self.servable(requested, load=False)
        except NotLoadedError:
            return await run_in_threadpool(self.servable, requested)

    def servable(self, requested: str, load: bool = True) -> ServedModel:
        """The model to predict with: 404 if unknown, 503 if its file cannot be served."""
        model = self.find(requested, load)
        if model.runtime is None:
            raise ModelUnavailableError(model.name, model.reason or model.status)
        return model

    def find(self, requested: str, load: bool = True) -> ServedModel:
        """The model named ``requested`` (any case), or the best one for 'best'."""
        if requested.strip().lower() == BEST_ALIAS:
            best = _best_of(self.registry.all(load), self.report.rows_by_file())
            if best is None:
                raise ModelNotFoundError(BEST_ALIAS, NO_BEST)
            return best
        try:
            name = normalize_model_name(requested)
        except ValueError:
            raise ModelNotFoundError(requested) from None
        return self.registry.get(name, load)

    def summaries(self) -> list[ModelSummary]:
        """Every model file by name, with its status, runtime and report metrics."""
        models, rows = self.registry.all(), self.report.rows_by_file()
        best = _best_of(models, rows)
        return [_summary(model, best, rows) for model in models]

    def describe(self, requested: str) -> ModelDetail:
        model = self.find(requested)
        models, rows = self.registry.all(), self.report.rows_by_file()
        row = rows.get((model.name, model.sha256))
        metadata = {key: row.metadata.get(key) for key in DETAIL_METADATA} if row else {}
        return ModelDetail(
            **_summary(model, _best_of(models, rows), rows).model_dump(),
            **metadata,
            sha256=model.sha256,
            file_size=model.entry.pkl.size if model.entry.pkl else None,
            report_matches_file=row is not None,
        )


def _best_of(models: list[ServedModel], rows: ReportRows) -> ServedModel | None:
    """The usable model with the highest test_f1 in a report row that describes its file;
    ties go to the first name."""
    scored = []
    for model in models:
        row = rows.get((model.name, model.sha256))
        if model.runtime is not None and row is not None and row.test_f1 is not None:
            scored.append((-row.test_f1, model.name, model))
    return min(scored, key=lambda item: item[:2])[2] if scored else None


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

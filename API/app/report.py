"""The trainer's metrics report, read again only when its file changes: its JSON twin
(model_metrics.json) first, the pickled DataFrame only with ALLOW_PICKLE=true (unpickling runs
code). A row describes the file whose sha256 it records; the last such row wins."""

import io
import json
import logging
import os
import threading
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WrapValidator,
)

from app.models.files import FileKey, read_regular_file
from app.schemas import ClassScores, SpeciesName
from penguin_contract import METADATA_COLUMNS, METRIC_COLUMNS, REPORT_COLUMNS, report_json_path

logger = logging.getLogger(__name__)
MAX_REPORT_BYTES = 16 * 1024 * 1024


def _or_none(value: Any, handler: Any) -> Any:
    try:
        return handler(value)
    except ValidationError:
        return None


def _as_json(value: Any) -> Any:
    """JSON text parsed; what JSON cannot hold (a NumPy array in a pickle) becomes its text."""
    value = json.loads(value) if isinstance(value, str) else value
    return json.loads(json.dumps(value, default=str, skipkeys=True))


# A value of the wrong type, or out of range, is no value: it becomes null.
OrNull = WrapValidator(_or_none)
Unit = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Metric = Annotated[Unit | None, OrNull]
Text = Annotated[str | None, OrNull]
FromJson = BeforeValidator(_as_json)  # the trainer stores params and per_class as JSON text


class ReportRow(BaseModel):
    """One row of the report, checked strictly by parse_records: "1.0" or True is no metric."""

    model_config = ConfigDict(frozen=True)

    model: str
    train_accuracy: Metric = None
    test_accuracy: Metric = None
    test_precision: Metric = None
    test_recall: Metric = None
    test_f1: Metric = None
    trained_at: Text = None
    sklearn_version: Text = None
    sha256: Text = None
    feature_names: Annotated[list[str] | None, OrNull] = None
    classes: Annotated[list[int] | None, OrNull] = None
    estimator: Text = None
    params: Annotated[dict[str, Any] | None, FromJson, OrNull] = None
    onnx: Annotated[bool | None, OrNull] = None
    onnx_reason: Text = None
    per_class: Annotated[dict[SpeciesName, ClassScores] | None, FromJson, OrNull] = None

    @property
    def metrics(self) -> dict[str, float | None]:
        return {column: getattr(self, column) for column in METRIC_COLUMNS}

    @cached_property
    def metadata(self) -> dict[str, Any]:
        return self.model_dump(include=set(METADATA_COLUMNS))


assert tuple(ReportRow.model_fields) == REPORT_COLUMNS
EMPTY_METRICS: dict[str, float | None] = dict.fromkeys(METRIC_COLUMNS)
# (model name, sha256 of its file) -> the last row describing that file.
ReportRows = dict[tuple[str, str], ReportRow]
_ROWS_OR_NULL = TypeAdapter(list[Annotated[ReportRow | None, OrNull]])


def parse_records(records: Any) -> list[ReportRow]:
    """The rows that name a model: a row that is not an object, or has no name, is skipped."""
    return [row for row in _ROWS_OR_NULL.validate_python(records, strict=True) if row is not None]


class MetricsReport:
    def __init__(self, report_path: Path, allow_pickle: bool) -> None:
        self.json_path = report_json_path(report_path)
        self.paths = [self.json_path, report_path] if allow_pickle else [self.json_path]
        self._lock = threading.Lock()
        self._source: tuple[Path, FileKey] | None = None
        self._rows: ReportRows = {}

    def rows_by_file(self) -> ReportRows:
        """One stat of the report per call: take it once per request, not once per model."""
        source = self._find()
        with self._lock:
            if source != self._source:
                self._rows = self._read(*source) if source else {}
                self._source = source
            return self._rows

    def _find(self) -> tuple[Path, FileKey] | None:
        for path in self.paths:
            try:
                return path, FileKey.of(os.stat(path))
            except OSError:
                continue
        return None

    def _read(self, path: Path, key: FileKey) -> ReportRows:
        try:
            data = read_regular_file(path, MAX_REPORT_BYTES, key)
            if path == self.json_path:
                records = json.loads(data)
            else:
                frame = pd.read_pickle(io.BytesIO(data))
                if not isinstance(frame, pd.DataFrame):
                    raise ValueError("the pickled report is not a pandas DataFrame")
                records = frame.to_dict("records")
            rows = parse_records(records)
        except Exception as error:  # an unreadable report must not take the API down
            logger.warning("Cannot read the metrics report %s: %r", path, error)
            return {}
        return {(row.model, row.sha256): row for row in rows if row.sha256}

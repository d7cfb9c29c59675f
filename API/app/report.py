"""The trainer's metrics report, read again only when its file changes.

The report is read from its JSON twin (model_metrics.json) when there is one; from the
pickled DataFrame (model_metrics.pkl) only when there is no JSON twin and ALLOW_PICKLE is
true. Every value is checked: metrics must be numbers in [0, 1] (a bool, a string or 2.0
is no metric: it becomes null), metadata must have the types the trainer writes.

A row describes one file: a model's metrics and metadata come from its LAST row whose
sha256 equals the served pickle's. Rows for other files (an older training, a replaced
file, duplicates) are never presented as this file's.
"""

import io
import json
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from app.models.files import FileKey, read_regular_file
from penguin_contract import METRIC_COLUMNS, SPECIES, report_json_path

logger = logging.getLogger(__name__)
MAX_REPORT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ReportRow:
    """One report row: its metrics (None when missing or invalid) and the trainer's metadata."""

    model: str
    metrics: dict[str, float | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def test_f1(self) -> float | None:
        return self.metrics.get("test_f1")

    @property
    def sha256(self) -> str | None:
        return self.metadata.get("sha256")


EMPTY_METRICS: dict[str, float | None] = dict.fromkeys(METRIC_COLUMNS)
# (model name, sha256 of its file) -> the last row describing that file.
ReportRows = dict[tuple[str, str], ReportRow]


class MetricsReport:
    def __init__(self, report_path: Path, allow_pickle: bool) -> None:
        self.pickle_path = report_path
        self.json_path = report_json_path(report_path)
        self.allow_pickle = allow_pickle
        self._lock = threading.Lock()
        self._source: tuple[Path, FileKey] | None = None
        self._by_file: dict[tuple[str, str], ReportRow] = {}

    def rows_by_file(self) -> ReportRows:
        """The rows by file, read again if the report changed. One stat of the report per
        call: take it once per request, not once per model."""
        source = self.source()
        if source == self._source:
            return self._by_file
        with self._lock:
            if source != self._source:
                rows = self._read(source)
                self._by_file = {(row.model, row.sha256): row for row in rows if row.sha256}
                self._source = source
            return self._by_file

    def source(self) -> tuple[Path, FileKey] | None:
        """The file to read (JSON twin first) and its identity; None if there is none."""
        candidates = [self.json_path] + ([self.pickle_path] if self.allow_pickle else [])
        for path in candidates:
            try:
                return path, FileKey.of(os.stat(path))
            except OSError:
                continue
        return None

    def _read(self, source: tuple[Path, FileKey] | None) -> tuple[ReportRow, ...]:
        if source is None:
            return ()
        path, key = source
        try:
            data = read_regular_file(path, MAX_REPORT_BYTES, key)
            if path == self.json_path:
                records = json.loads(data)
            else:
                records = _frame_records(pd.read_pickle(io.BytesIO(data)))
            return parse_records(records)
        except Exception as error:  # an unreadable report must not take the API down
            logger.warning("Cannot read the metrics report %s: %r", path, error)
            return ()


def _frame_records(frame: Any) -> list[dict[str, Any]]:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError("the pickled report is not a pandas DataFrame")
    return frame.to_dict("records")


def parse_records(records: Any) -> tuple[ReportRow, ...]:
    if not isinstance(records, list):
        raise ValueError("the report is not a list of rows")
    rows = []
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("model"), str):
            continue
        metrics = {column: _metric(record.get(column)) for column in METRIC_COLUMNS}
        metadata = {
            "trained_at": _text(record.get("trained_at")),
            "sklearn_version": _text(record.get("sklearn_version")),
            "sha256": _text(record.get("sha256")),
            "estimator": _text(record.get("estimator")),
            "params": _params(record.get("params")),
            "classes": _list_of(record.get("classes"), int),
            "feature_names": _list_of(record.get("feature_names"), str),
            "onnx": record.get("onnx") if isinstance(record.get("onnx"), bool) else None,
            "onnx_reason": _text(record.get("onnx_reason")),
            "per_class": _per_class(record.get("per_class")),
        }
        rows.append(ReportRow(record["model"], metrics, metadata))
    return tuple(rows)


def _metric(value: Any) -> float | None:
    """A metric is a real number in [0, 1]; anything else is no metric."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _list_of(value: Any, kind: type) -> list | None:
    if isinstance(value, str | bytes | dict) or not hasattr(value, "__iter__"):
        return None
    items = list(value)
    if not all(isinstance(item, kind) and not isinstance(item, bool) for item in items):
        try:  # NumPy integers and the like from a pickled DataFrame
            items = [kind(item) for item in items]
        except (TypeError, ValueError):
            return None
    return items


def _per_class(value: Any) -> dict[str, dict[str, float]] | None:
    """{species name: {precision, recall, f1, support}}, every number valid, or None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not set(value) <= set(SPECIES.values()):
        return None
    report = {}
    for species, scores in value.items():
        if not isinstance(scores, dict):
            return None
        checked = {key: _metric(scores.get(key)) for key in ("precision", "recall", "f1")}
        support = scores.get("support")
        if None in checked.values() or isinstance(support, bool) or not isinstance(support, int):
            return None
        report[species] = {**checked, "support": support}
    return report


def _params(value: Any) -> dict[str, Any] | None:
    """The final step's parameters as JSON-safe values (anything else becomes its text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    return json.loads(json.dumps(value, default=str, skipkeys=True))

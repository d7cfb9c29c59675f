"""The trainer's metrics report (model_metrics.pkl), re-read only when its file changes."""

import io
import json
import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from app.files import FileKey
from penguin_contract import METRIC_COLUMNS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportRow:
    """One model's row: metrics (None when missing) and the trainer's metadata."""

    metrics: dict[str, float | None]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def test_f1(self) -> float | None:
        return self.metrics.get("test_f1")


EMPTY_ROW = ReportRow(metrics=dict.fromkeys(METRIC_COLUMNS))


class MetricsReport:
    """Cached view of the report; a changed file (path, mtime_ns, size, inode) is re-read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: FileKey | None = None
        self._rows: dict[str, ReportRow] = {}
        self._lock = threading.Lock()

    def rows(self) -> dict[str, ReportRow]:
        key = FileKey.of_path(self.path)
        if key == self._key:
            return self._rows
        with self._lock:
            if key != self._key:
                self._rows, self._key = self._read(key)
            return self._rows

    def signature(self) -> FileKey | None:
        """Equal while the report file is unchanged (None: there is no report)."""
        return FileKey.of_path(self.path)

    def row(self, name: str) -> ReportRow:
        return self.rows().get(name, EMPTY_ROW)

    def _read(self, key: FileKey | None) -> tuple[dict[str, ReportRow], FileKey | None]:
        if key is None:
            return {}, None
        try:
            with open(self.path, "rb") as file:
                key = FileKey.of_fd(self.path, file.fileno())
                frame = pd.read_pickle(io.BytesIO(file.read()))
            return parse_report(frame), key
        except FileNotFoundError:
            return {}, None
        except Exception as error:  # an unreadable report must not take the API down
            logger.warning("Cannot read the metrics report %s: %r", self.path, error)
            return {}, key


def parse_report(frame: Any) -> dict[str, ReportRow]:
    if not isinstance(frame, pd.DataFrame) or "model" not in frame.columns:
        raise ValueError("not a DataFrame with a 'model' column")
    rows = {}
    for record in frame.to_dict("records"):
        metrics = {column: _finite_or_none(record.get(column)) for column in METRIC_COLUMNS}
        metadata = {
            "trained_at": _text_or_none(record.get("trained_at")),
            "sklearn_version": _text_or_none(record.get("sklearn_version")),
            "sha256": _text_or_none(record.get("sha256")),
            "estimator": _text_or_none(record.get("estimator")),
            "params": _params(record.get("params")),
            "classes": _list_or_none(record.get("classes"), int),
            "feature_names": _list_or_none(record.get("feature_names"), str),
        }
        rows[str(record["model"])] = ReportRow(metrics=metrics, metadata=metadata)
    return rows


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _list_or_none(value: Any, kind: type) -> list | None:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return None
    try:
        return [kind(item) for item in value]
    except (TypeError, ValueError):
        return None


def _params(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None

"""Train a scikit-learn pipeline on the penguin contract and write its artifacts.

`ModelTrainer` is the single place where training artifacts are written:

- ``{models_dir}/{name}_model.pkl``: the fitted ``Pipeline`` (joblib). It takes a float64
  NumPy array whose columns are ``penguin_contract.FEATURES`` in that order, and predicts
  species codes (1 Adelie, 2 Chinstrap, 3 Gentoo).
- ``{models_dir}/{name}_model.onnx``: its ONNX twin (see ``utils.onnx_export``), written only
  when it agrees with the pipeline on every training and test row and on noisy copies; its
  metadata holds the sha256 of the pickle it belongs to. Otherwise the report row says why.
- ``{report_dir}/{name}_confusion_matrix.png``: the test-set confusion matrix.
- ``report_path`` (``model_metrics.pkl``): a pickled pandas DataFrame with one row per model,
  columns ``penguin_contract.REPORT_COLUMNS``. The row holds the metrics *and* the metadata
  a server needs to trust and describe the model (trained_at, scikit-learn version, sha256
  of the pickle, feature names, classes, estimator and its parameters, whether there is an
  ONNX twin and why not): there is no sidecar.
- ``report_json_path(report_path)`` (``model_metrics.json``): the same rows as a JSON list of
  objects, so that a reader never needs to unpickle anything to list models.

Every training is first kept as a version (``utils.versions``: its pickle, twin, matrix and
row under ``{models_dir}/versions/{name}/{sha256}/``); the promotion rule (``promote``:
"always" or "if_better") decides whether it becomes the served files above, and the decision
goes to ``{report_dir}/{name}_history.jsonl``. ``rollback`` serves an earlier version again.

Every file is written atomically (temporary file + ``os.replace``), and everything from the
version's files to the history is done holding the report's file lock, so concurrent trainers
lose no row, version or history line. A stale ONNX twin is removed before the new pickle is
written, so an old twin never sits beside a new pickle.
"""

import hashlib
import io
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import seaborn as sns
import sklearn
from filelock import FileLock
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)
from sklearn.pipeline import Pipeline

from penguin_contract import (
    FEATURES,
    METRIC_COLUMNS,
    PROMOTION_RULES,
    REPORT_COLUMNS,
    SPECIES,
    atomic_write_bytes,
    confusion_matrix_filename,
    model_filename,
    normalize_model_name,
    onnx_filename,
    report_json_path,
)

from .onnx_export import OnnxTwin, export_onnx_twin
from .versions import VersionFiles, VersionStore, previously_served

DEFAULT_MODELS_DIR = "/app/models"
DEFAULT_REPORT_PATH = "/app/report/model_metrics.pkl"
REPORT_LOCK_TIMEOUT_S = 120
DEFAULT_KEEP_VERSIONS = 5

SPECIES_CODES = list(SPECIES)
SPECIES_NAMES = list(SPECIES.values())


class ReportError(RuntimeError):
    """The existing report cannot be read; it is left untouched rather than overwritten."""


class ModelTrainer:
    """Fit, evaluate and save penguin classifiers; keep every version and one report row per
    served model."""

    def __init__(
        self,
        models_dir: str | Path | None = None,
        report_path: str | Path | None = None,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
        promote: str | None = None,
    ) -> None:
        self.models_dir = Path(models_dir or os.environ.get("MODELS_DIR") or DEFAULT_MODELS_DIR)
        self.report_path = Path(report_path or os.environ.get("REPORT_PATH") or DEFAULT_REPORT_PATH)
        self.keep_versions = keep_versions  # non-served versions kept per model
        # The default rule of train_and_save; bootstrap_models.py --promote sets TRAINER_PROMOTE.
        self.promote = promotion_rule(promote or os.environ.get("TRAINER_PROMOTE") or "always")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.report_path.parent.mkdir(parents=True, exist_ok=True)
        self.versions = VersionStore(self.models_dir, self.report_dir)

    @property
    def report_dir(self) -> Path:
        return self.report_path.parent

    def train_and_save(
        self,
        name: str,
        estimator: BaseEstimator,
        X_train,
        X_test,
        y_train,
        y_test,
        scaler: BaseEstimator | None = None,
        promote: str | None = None,
    ) -> dict[str, Any]:
        """Fit ``[scaler,] estimator`` on the training split, evaluate it, keep it as a version
        and serve it if the promotion rule says so.

        ``name`` is lower-cased and validated by the contract (``ValueError`` for names that
        could escape the models directory, and for the reserved ``best``) before any work.
        ``X_*`` are DataFrames holding the contract's FEATURES columns (any order, extra
        columns ignored) or 2-D arrays with exactly those columns in contract order.
        ``y_*`` are species codes. ``estimator`` and ``scaler`` are cloned: the caller's
        objects stay unfitted and can be reused.

        ``promote`` (default: the trainer's ``promote``, "always") is "always", or "if_better":
        serve the new version only if its test_f1 is at least the served version's, scored
        again on this same test split. Either way the decision goes to the model's history.

        Returns the metrics, the metadata stored in the report row, the decision and the paths.
        """
        name = normalize_model_name(name)
        rule = promotion_rule(promote or self.promote)
        X_train, X_test = feature_matrix(X_train), feature_matrix(X_test)
        y_train, y_test = species_codes(y_train), species_codes(y_test)
        read_report(self.report_path)  # fail before writing anything if the report is unreadable

        pipeline = build_pipeline(estimator, scaler).fit(X_train, y_train)
        y_pred = pipeline.predict(X_test)
        metrics = evaluate(pipeline, X_train, y_train, y_test, y_pred)
        png = self._report_test_results(name, y_test, y_pred)
        pickle_bytes = pickled(pipeline)
        twin = export_onnx_twin(pipeline, pickle_bytes, X_train, X_test)
        row = {
            "model": name,
            **metrics,
            **metadata(pipeline, pickle_bytes, twin),
            "per_class": json.dumps(per_class_report(y_test, y_pred)),
        }
        with self._report_lock():
            folder = self.versions.save(
                name, VersionFiles(pickle_bytes, twin.model_bytes, png, row)
            )
            entry = self._decide(name, rule, row, (X_train, X_test, y_train, y_test))
            if entry["decision"] == "promoted":
                self._serve(name, row["sha256"])
            self._record(name, entry)
        model_path, onnx_path = self.models_dir / model_filename(name), None
        if twin.model_bytes is not None:
            onnx_path = self.models_dir / onnx_filename(name)
        print(decision_message(entry, saved_message(model_path, twin, self.report_path), folder))
        return {
            **row,
            **{key: entry[key] for key in ("decision", "reason", "previous_version")},
            "previous_metrics": entry["previous_metrics"],
            "version": row["sha256"],
            "version_path": str(folder),
            "model_path": str(model_path),
            "onnx_path": None if onnx_path is None else str(onnx_path),
            "report_path": str(self.report_path),
            "confusion_matrix_path": str(self.report_dir / confusion_matrix_filename(name)),
        }

    def rollback(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Serve the version served before the current one again, or ``version`` (its sha256,
        or 7+ of its first characters): its pickle, twin, matrix and report row, exactly as
        they were. The event goes to the history, which is returned. ``ValueError`` if there
        is no such kept version."""
        name = normalize_model_name(name)
        with self._report_lock():
            served = self.served_version(name)
            if version is None:
                version = previously_served(self.versions.history(name), served)
                if version is None:
                    raise ValueError(f"{name!r} has no previously served version to go back to")
            target = self.versions.resolve(name, version)
            if target == served:
                raise ValueError(f"version {target[:12]} of {name!r} is already the served one")
            restored = self.versions.load(name, target).row
            previous = None
            if served in self.versions.kept(name):
                previous = metrics_of(self.versions.load(name, served).row)
            self._serve(name, target)
            reason = f"rollback requested; it replaced {served[:12] if served else 'no version'}"
            entry = history_entry(restored, "rolled_back", None, reason, served, previous)
            self._record(name, entry)
        print(f"{name}: version {target[:12]} is served again ({reason})")
        return entry

    def history(self, name: str) -> list[dict[str, Any]]:
        """The decisions about a model's versions, newest first, each marked served or not."""
        name = normalize_model_name(name)
        served = self.served_version(name)
        entries = reversed(self.versions.history(name))
        return [{**entry, "served": entry.get("version") == served} for entry in entries]

    def served_version(self, name: str) -> str | None:
        """The sha256 of the served pickle, or None when nothing is served."""
        try:
            return hashlib.sha256((self.models_dir / model_filename(name)).read_bytes()).hexdigest()
        except FileNotFoundError:
            return None

    def _report_test_results(self, name: str, y_test, y_pred) -> bytes:
        """Print the classification report; show and return the confusion matrix PNG."""
        print(f"Model: {name}")
        print(
            classification_report(
                y_test, y_pred, labels=SPECIES_CODES, target_names=SPECIES_NAMES, zero_division=0
            )
        )
        png = confusion_matrix_png(name, y_test, y_pred)
        show_in_notebook(png)
        return png

    def _decide(self, name: str, rule: str, row: dict[str, Any], split) -> dict[str, Any]:
        """The history entry of a new version: promoted or rejected, why, and the served
        version's metrics scored again on the same split (None if it cannot be scored)."""
        served = self.served_version(name)
        if served is None:
            return history_entry(row, "promoted", rule, "no version was served", None, None)
        try:
            previous_metrics = self._score_served(name, *split)
        except Exception as error:  # a broken served file is replaced whatever the rule
            reason = f"the served version cannot be scored ({type(error).__name__}: {error})"
            return history_entry(row, "promoted", rule, reason, served, None)
        new, old = row["test_f1"], previous_metrics["test_f1"]
        comparison = f"test_f1 {new:.4f} {'>=' if new >= old else '<'} {old:.4f} of the served"
        reason = f"{comparison} version on the same test split"
        if rule == "always":
            reason = f"rule 'always' ({reason})"
        decision = "promoted" if rule == "always" or new >= old else "rejected"
        return history_entry(row, decision, rule, reason, served, previous_metrics)

    def _score_served(self, name: str, X_train, X_test, y_train, y_test) -> dict[str, float]:
        """The served pipeline's metrics on this split (the trainer trusts its own pickles)."""
        served = joblib.load(self.models_dir / model_filename(name))
        return evaluate(served, X_train, y_train, y_test, served.predict(X_test))

    def _serve(self, name: str, version: str) -> None:
        """Make a kept version the served one: its twin goes first (a reader never finds an
        old twin beside a new pickle), then the pickle, the twin, the matrix and the row."""
        files = self.versions.load(name, version)
        onnx_path = self.models_dir / onnx_filename(name)
        onnx_path.unlink(missing_ok=True)
        atomic_write_bytes(self.models_dir / model_filename(name), files.pickle)
        if files.onnx is not None:
            atomic_write_bytes(onnx_path, files.onnx)
        atomic_write_bytes(self.report_dir / confusion_matrix_filename(name), files.png)
        self._write_report_row(files.row)

    def _record(self, name: str, entry: dict[str, Any]) -> None:
        """Add the entry to the history and drop the oldest versions beyond keep_versions."""
        self.versions.record(name, entry)
        self.versions.prune(name, self.keep_versions, self.served_version(name))

    def read_report(self) -> pd.DataFrame:
        """The report as a DataFrame (empty, with REPORT_COLUMNS, if there is none yet)."""
        return read_report(self.report_path)

    def _report_lock(self) -> FileLock:
        return FileLock(f"{self.report_path}.lock", timeout=REPORT_LOCK_TIMEOUT_S)

    def _write_report_row(self, row: dict[str, Any]) -> None:
        """Replace the model's row in both reports. The caller holds the report lock."""
        report = read_report(self.report_path)
        others = report[report["model"] != row["model"]].to_dict("records")
        updated = pd.DataFrame([*others, row], columns=report_columns(report))
        updated = updated.sort_values("model", ignore_index=True)
        buffer = io.BytesIO()
        updated.to_pickle(buffer)
        atomic_write_bytes(self.report_path, buffer.getvalue())
        atomic_write_bytes(report_json_path(self.report_path), report_json(updated))


def promotion_rule(rule: str) -> str:
    if rule not in PROMOTION_RULES:
        raise ValueError(f"promote must be one of {', '.join(PROMOTION_RULES)}; got {rule!r}")
    return rule


def history_entry(
    row: dict[str, Any],
    decision: str,
    rule: str | None,
    reason: str,
    previous_version: str | None,
    previous_metrics: dict[str, Any] | None,
) -> dict[str, Any]:
    """One line of the history: when, which version, what was decided and why, and the
    metrics of both versions (the one served before: None when there was none)."""
    return {
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": row["sha256"],
        "decision": decision,
        "rule": rule,
        "reason": reason,
        "trained_at": row.get("trained_at"),
        "estimator": row.get("estimator"),
        "metrics": metrics_of(row),
        "previous_version": previous_version,
        "previous_metrics": None if previous_metrics is None else metrics_of(previous_metrics),
    }


def metrics_of(row: dict[str, Any]) -> dict[str, float | None]:
    return {column: row.get(column) for column in METRIC_COLUMNS}


def pickled(pipeline: Pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def saved_message(model_path: Path, twin: OnnxTwin, report_path: Path) -> str:
    if twin.model_bytes is None:
        return f"Saved {model_path} and its row in {report_path} (no ONNX twin: {twin.reason})"
    return f"Saved {model_path}, its ONNX twin and its row in {report_path}"


def decision_message(entry: dict[str, Any], saved: str, folder: Path) -> str:
    """What train_and_save prints: where it saved the version, and the rule's decision."""
    version = entry["version"][:12]
    if entry["decision"] == "rejected":
        return f"Kept version {version} in {folder}, not served: {entry['reason']}"
    return f"{saved}; version {version} promoted: {entry['reason']}"


def feature_matrix(X) -> np.ndarray:
    """The features as a float64 array with the contract's columns in contract order."""
    if isinstance(X, pd.DataFrame):
        missing = [column for column in FEATURES if column not in X.columns]
        if missing:
            raise ValueError(f"X lacks feature columns {missing}; expected {list(FEATURES)}")
        array = X.loc[:, list(FEATURES)].to_numpy(dtype=np.float64)
    else:
        array = np.asarray(X, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != len(FEATURES):
        raise ValueError(
            f"X must be a DataFrame or a 2-D array with {len(FEATURES)} columns in this "
            f"order: {list(FEATURES)}; got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("X holds NaN or infinite values; clean the data before training")
    return array


def species_codes(y) -> np.ndarray:
    """The labels as an int64 array of contract species codes."""
    codes = np.asarray(y)
    unknown = set(pd.unique(codes.ravel())) - set(SPECIES_CODES)
    if codes.ndim != 1 or unknown:
        raise ValueError(
            f"y must be a 1-D sequence of species codes {SPECIES_CODES}; "
            f"unknown values: {sorted(map(str, unknown))}"
        )
    return codes.astype(np.int64)


def build_pipeline(estimator: BaseEstimator, scaler: BaseEstimator | None = None) -> Pipeline:
    """An unfitted pipeline of clones: ``scaler`` first when given, then ``model``."""
    steps = [("model", clone(estimator))]
    if scaler is not None:
        steps.insert(0, ("scaler", clone(scaler)))
    return Pipeline(steps)


def evaluate(pipeline: Pipeline, X_train, y_train, y_test, y_pred) -> dict[str, float]:
    """Train accuracy and weighted test metrics, keyed by the contract's METRIC_COLUMNS."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_test, y_pred, average="weighted", zero_division=0
    )
    values = (
        accuracy_score(y_train, pipeline.predict(X_train)),
        accuracy_score(y_test, y_pred),
        precision,
        recall,
        f1,
    )
    return {column: float(value) for column, value in zip(METRIC_COLUMNS, values, strict=True)}


def confusion_matrix_png(name: str, y_test, y_pred) -> bytes:
    """The test-set confusion matrix as a seaborn heatmap, rendered to PNG bytes.

    Drawn on a standalone ``Figure`` (not pyplot), so it needs no GUI backend, never blocks,
    and leaves the caller's matplotlib backend and open figures alone.
    """
    matrix = confusion_matrix(y_test, y_pred, labels=SPECIES_CODES)
    figure = Figure(figsize=(5, 4), layout="tight")
    axes = figure.subplots()
    sns.heatmap(
        matrix,
        annot=True,
        fmt="d",
        cmap="Blues",
        xticklabels=SPECIES_NAMES,
        yticklabels=SPECIES_NAMES,
        ax=axes,
    )
    axes.set(title=f"Confusion matrix: {name}", xlabel="Predicted", ylabel="Actual")
    axes.tick_params(axis="y", labelrotation=0)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def show_in_notebook(png: bytes) -> None:
    """Display the PNG inline when running inside a Jupyter kernel; do nothing elsewhere."""
    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython
    from IPython.display import Image, display

    shell = get_ipython()
    if shell is not None and hasattr(shell, "kernel"):
        display(Image(data=png, format="png"))


def per_class_report(y_test, y_pred) -> dict[str, dict[str, float]]:
    """Test-set precision, recall, F1 and support of each species, by species name."""
    report = classification_report(
        y_test,
        y_pred,
        labels=SPECIES_CODES,
        target_names=SPECIES_NAMES,
        zero_division=0,
        output_dict=True,
    )
    return {
        name: {
            "precision": float(report[name]["precision"]),
            "recall": float(report[name]["recall"]),
            "f1": float(report[name]["f1-score"]),
            "support": int(report[name]["support"]),
        }
        for name in SPECIES_NAMES
    }


def metadata(pipeline: Pipeline, pickle_bytes: bytes, twin: OnnxTwin) -> dict[str, Any]:
    """What a server needs to trust and describe the model (METADATA_COLUMNS)."""
    final_step = pipeline[-1]
    return {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "sha256": hashlib.sha256(pickle_bytes).hexdigest(),
        "feature_names": list(FEATURES),
        "classes": [int(code) for code in pipeline.classes_],
        "estimator": type(final_step).__name__,
        "params": json.dumps(final_step.get_params(), default=str, sort_keys=True),
        "onnx": twin.model_bytes is not None,
        "onnx_reason": twin.reason,
    }


def read_report(report_path: Path) -> pd.DataFrame:
    """The existing report, or an empty one if the file does not exist.

    An unreadable report raises ``ReportError`` instead of being replaced: overwriting it
    would silently drop every other model's row. Move the file aside to start afresh.
    """
    if not report_path.exists():
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    try:
        report = pd.read_pickle(report_path)
    except Exception as error:
        raise ReportError(
            f"Cannot read the report {report_path} ({type(error).__name__}: {error}). "
            "It was left untouched; move it aside or delete it to start a new report."
        ) from error
    if not isinstance(report, pd.DataFrame) or "model" not in report.columns:
        raise ReportError(
            f"{report_path} is not a model report (a pandas DataFrame with a 'model' column). "
            "It was left untouched; move it aside or delete it to start a new report."
        )
    return report


def report_columns(report: pd.DataFrame) -> list[str]:
    """REPORT_COLUMNS first, then any extra columns an older report carries."""
    extra = [column for column in report.columns if column not in REPORT_COLUMNS]
    return [*REPORT_COLUMNS, *extra]


def report_json(report: pd.DataFrame) -> bytes:
    """The report's rows as a JSON list of objects (missing values and NaN as null)."""
    rows = [
        {str(column): json_native(value) for column, value in row.items()}
        for row in report.to_dict("records")
    ]
    return json.dumps(rows, indent=2, allow_nan=False).encode()


def json_native(value: Any) -> Any:
    """``value`` as JSON's own types; what JSON cannot hold (NaN, unknown objects) is mapped."""
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, np.generic):
        return json_native(value.item())
    if isinstance(value, (list, tuple, np.ndarray)):
        return [json_native(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_native(item) for key, item in value.items()}
    if pd.isna(value):  # pd.NA, pd.NaT
        return None
    return str(value)

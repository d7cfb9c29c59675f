"""One model entry -> a ServedModel: read safely, hash, choose the runtime, check, probe once.

The ONNX twin serves only the pickle whose sha256 it records. Without a usable twin the
pickle is unpickled (joblib runs code: the README's security note), unless ALLOW_PICKLE=false.
"""

import hashlib
import io
import json
import threading
import warnings
from dataclasses import dataclass
from numbers import Number
from typing import Literal

import joblib
import numpy as np
import onnxruntime
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.pipeline import Pipeline

from app.models.files import FileChangedError, ModelEntry, ModelFiles
from app.models.runtimes import OnnxRuntime, Runtime, SklearnRuntime, session_options
from penguin_contract import FEATURES, FIELDS, ONNX_INPUT_NAME, ONNX_LABEL_OUTPUT, SPECIES

Status = Literal["ok", "error", "incompatible"]

# warnings.catch_warnings is process-global state, so loads that record warnings take turns.
_WARNINGS_LOCK = threading.Lock()


def probe_rows(count: int = 64) -> np.ndarray:
    """Valid rows (midpoints, then random values in range): a fresh model must predict them."""
    random = np.random.default_rng(0)
    columns = [
        random.integers(f.minimum, f.maximum, count, endpoint=True)
        if f.kind == "integer"
        else random.uniform(f.minimum, f.maximum, count)
        for f in FIELDS
    ]
    midpoint = [(f.minimum + f.maximum) // 2 for f in FIELDS]
    return np.vstack([midpoint, np.column_stack(columns)]).astype(np.float64)


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model entry as loaded: its runtime when usable, or why it is not."""

    name: str
    entry: ModelEntry
    sha256: str
    status: Status
    reason: str | None = None
    runtime: Runtime | None = None
    runtime_reason: str | None = None  # why scikit-learn serves it rather than ONNX Runtime

    @property
    def has_probabilities(self) -> bool:
        return self.runtime is not None and self.runtime.has_probabilities


class ModelLoader:
    def __init__(self, files: ModelFiles, allow_pickle: bool) -> None:
        self.files = files
        self.allow_pickle = allow_pickle
        self._probe = probe_rows()

    def load(self, entry: ModelEntry) -> ServedModel:
        """A broken file is a ServedModel with a reason; FileChangedError if it was replaced."""
        if entry.pkl is None:
            return self._broken(entry, "", "error", entry.problem or "it is not a model file")
        try:
            pickle_bytes = self.files.read(self.files.pkl_path(entry.name), entry.pkl)
        except FileChangedError:
            raise
        except OSError as error:
            reason = f"the file cannot be read ({error.strerror or error})"
            return self._broken(entry, "", "error", reason)
        sha256 = hashlib.sha256(pickle_bytes).hexdigest()
        twin, twin_problem = self._onnx_twin(entry, sha256)
        if twin is not None:
            return ServedModel(entry.name, entry, sha256, "ok", runtime=twin)
        if not self.allow_pickle:
            reason = f"ALLOW_PICKLE=false and {twin_problem}"
            return self._broken(entry, sha256, "error", reason)
        runtime, status, problem = self._unpickled(pickle_bytes)
        if runtime is None:
            return self._broken(entry, sha256, status, problem)
        return ServedModel(
            entry.name, entry, sha256, "ok", runtime=runtime, runtime_reason=twin_problem
        )

    @staticmethod
    def _broken(entry: ModelEntry, sha256: str, status: Status, reason: str) -> ServedModel:
        return ServedModel(entry.name, entry, sha256, status, reason=reason)

    def _onnx_twin(self, entry: ModelEntry, sha256: str) -> tuple[OnnxRuntime | None, str]:
        """The twin's runtime, or None and why it cannot serve this pickle."""
        if entry.onnx is None:
            return None, "it has no ONNX twin"
        try:
            data = self.files.read(self.files.onnx_path(entry.name), entry.onnx)
            session = onnxruntime.InferenceSession(
                data, sess_options=session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # a truncated or foreign file: onnxruntime says why
            return None, f"its ONNX twin cannot be loaded ({type(error).__name__}: {error})"
        metadata = session.get_modelmeta().custom_metadata_map
        if metadata.get("pkl_sha256") != sha256:
            return None, "its ONNX twin was exported from another version of the pickle"
        try:
            runtime = OnnxRuntime(session, _twin_classes(session, metadata))
            _check_prediction(runtime, self._probe)
        except Exception as error:
            return None, f"its ONNX twin cannot be used ({type(error).__name__}: {error})"
        return runtime, ""

    def _unpickled(self, data: bytes) -> tuple[SklearnRuntime | None, Status, str]:
        try:
            with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", InconsistentVersionWarning)
                pipeline = joblib.load(io.BytesIO(data))
        except Exception as error:
            reason = f"the file cannot be unpickled ({type(error).__name__}: {error})"
            return None, "error", reason
        for warning in caught:
            if issubclass(warning.category, InconsistentVersionWarning):
                reason = f"incompatible scikit-learn version: {warning.message}"
                return None, "incompatible", reason
        problem = pipeline_problem(pipeline)
        if problem is not None:
            return None, "error", problem
        try:
            _use_one_thread(pipeline)
            runtime = SklearnRuntime(pipeline, tuple(int(code) for code in pipeline.classes_))
            _check_prediction(runtime, self._probe)
        except Exception as error:
            reason = f"the pipeline cannot be used ({type(error).__name__}: {error})"
            return None, "error", reason
        return runtime, "ok", ""


def _twin_classes(session: onnxruntime.InferenceSession, metadata: dict[str, str]) -> tuple:
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != ONNX_INPUT_NAME or inputs[0].type != "tensor(double)":
        raise ValueError(f"expected one tensor(double) input named {ONNX_INPUT_NAME!r}")
    if ONNX_LABEL_OUTPUT not in {output.name for output in session.get_outputs()}:
        raise ValueError(f"no {ONNX_LABEL_OUTPUT!r} output")
    if json.loads(metadata.get("feature_names", "null")) != list(FEATURES):
        raise ValueError("its feature_names are not the contract's FEATURES")
    codes = _integer_codes(json.loads(metadata.get("classes", "null")) or ())
    if not codes or set(codes) - set(SPECIES):
        raise ValueError("its classes are not species codes")
    return tuple(codes)


def _check_prediction(runtime: Runtime, rows: np.ndarray) -> None:
    """Predict the probe rows once: the shapes, labels and probabilities must make sense."""
    labels, probabilities = runtime.predict(rows)
    if labels.shape != (len(rows),) or not set(labels.tolist()) <= set(runtime.classes):
        raise ValueError("it predicts labels outside its classes")
    if probabilities is not None and not np.isfinite(probabilities).all():
        raise ValueError("it returns probabilities that are not finite")


def pipeline_problem(candidate: object) -> str | None:
    """Why ``candidate`` is not a fitted penguin pipeline, or None if it is one."""
    if not isinstance(candidate, Pipeline):
        return f"the file holds a {type(candidate).__name__}, not a scikit-learn Pipeline"
    classes = getattr(candidate, "classes_", None)
    if classes is None:
        return "the pipeline is not fitted (it has no classes_)"
    codes = _integer_codes(classes)
    if codes is None:
        shown = ", ".join(repr(label) for label in list(classes)[:5])
        return f"the pipeline's classes ({shown}) are not species codes: train on species ids"
    unknown = set(codes) - set(SPECIES)
    if unknown:
        return f"the pipeline predicts unknown species codes {sorted(unknown)}"
    n_features = getattr(candidate, "n_features_in_", None)
    if n_features is not None and n_features != len(FEATURES):
        return f"the pipeline expects {n_features} features, the contract has {len(FEATURES)}"
    names = getattr(candidate, "feature_names_in_", None)
    if names is not None and tuple(names) != FEATURES:
        return f"the pipeline was fitted on columns {list(names)}, not in the contract's order"
    return None


def _integer_codes(labels) -> list[int] | None:
    """The labels as ints if every one is an integral number (not a bool), else None."""
    codes = []
    for label in labels:
        if isinstance(label, bool | np.bool_) or not isinstance(label, Number):
            return None
        if label != int(label):
            return None
        codes.append(int(label))
    return codes


def _use_one_thread(pipeline: Pipeline) -> None:
    """Single-row predictions are slower with worker threads (n_jobs=-1 starts them per call)."""
    params = pipeline.get_params(deep=True)
    one_thread = {key: 1 for key in params if key.endswith("__n_jobs") and params[key] != 1}
    if one_thread:
        pipeline.set_params(**one_thread)

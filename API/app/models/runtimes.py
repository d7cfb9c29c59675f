"""The two runtimes: float64 rows in FEATURES order -> (species codes [N], probabilities
[N, 3] in SPECIES order, or None): the trainer's ONNX twin (proven to give the pipeline's
answers, probabilities within 1e-6), or the unpickled pipeline's predict and predict_proba."""

from typing import Literal, Protocol

import numpy as np
import onnxruntime
from sklearn.pipeline import Pipeline

from penguin_contract import ONNX_INPUT_NAME, ONNX_LABEL_OUTPUT, ONNX_PROBABILITIES_OUTPUT, SPECIES

RuntimeName = Literal["onnx", "sklearn"]
SPECIES_CODES = tuple(SPECIES)
Prediction = tuple[np.ndarray, np.ndarray | None]


class Runtime(Protocol):
    name: RuntimeName
    classes: tuple[int, ...]
    has_probabilities: bool

    def predict(self, rows: np.ndarray) -> Prediction: ...


def in_species_order(probabilities: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """[N, len(classes)] columns in the model's class order -> [N, 3] in SPECIES order (a
    species the model never saw has probability 0)."""
    if classes == SPECIES_CODES:
        return np.asarray(probabilities, dtype=np.float64)
    ordered = np.zeros((probabilities.shape[0], len(SPECIES_CODES)), dtype=np.float64)
    ordered[:, [SPECIES_CODES.index(code) for code in classes]] = probabilities
    return ordered


def session_options() -> onnxruntime.SessionOptions:
    """One intra- and one inter-op thread: each API worker is one process on one core, and
    a single row costs microseconds, less than waking a thread pool."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    return options


class OnnxRuntime:
    name: RuntimeName = "onnx"

    def __init__(self, session: onnxruntime.InferenceSession, classes: tuple[int, ...]) -> None:
        self.session = session
        self.classes = classes
        outputs = {output.name for output in session.get_outputs()}
        self.has_probabilities = ONNX_PROBABILITIES_OUTPUT in outputs
        self._outputs = [ONNX_LABEL_OUTPUT]
        if self.has_probabilities:
            self._outputs.append(ONNX_PROBABILITIES_OUTPUT)

    def predict(self, rows: np.ndarray) -> Prediction:
        results = self.session.run(self._outputs, {ONNX_INPUT_NAME: rows})
        labels = np.asarray(results[0], dtype=np.int64).reshape(-1)
        if not self.has_probabilities:
            return labels, None
        return labels, in_species_order(results[1], self.classes)


class SklearnRuntime:
    name: RuntimeName = "sklearn"

    def __init__(self, pipeline: Pipeline, classes: tuple[int, ...]) -> None:
        self.pipeline = pipeline
        self.classes = classes
        self.has_probabilities = hasattr(pipeline, "predict_proba")

    def predict(self, rows: np.ndarray) -> Prediction:
        labels = np.asarray(self.pipeline.predict(rows), dtype=np.int64)
        if not self.has_probabilities:
            return labels, None
        return labels, in_species_order(self.pipeline.predict_proba(rows), self.classes)

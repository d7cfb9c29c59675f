"""Convert a fitted pipeline to its ONNX twin and prove the twin agrees with it.

The twin is what the API serves without unpickling anything, so it must give the same answers
as the pickle: the same label on every row and probabilities within ``PROBABILITY_TOLERANCE``.
``export_onnx_twin`` returns the serialized model only when that holds on every training and
test row and on noisy copies of them; otherwise it returns the reason.

The graph (contract: ``penguin_contract.ONNX_*``):

- one input ``features``, ``tensor(double) [N, 7]``, columns in ``FEATURES`` order;
- every preprocessing step (all steps before the final estimator) in double, then a ``Cast``
  to float32, then the estimator. This is what scikit-learn does: it scales in float64 and its
  trees cast their input to float32. skl2onnx's default graph either scales in float32 (float
  input) or compares the scaled doubles with the thresholds (double input): either way a real
  bird that sits on a tree threshold can take the other branch (the notebook's forest: 0.09 on
  24 birds). If the float32 graph disagrees, the same pipeline with the estimator in double is
  tried (it suits estimators that compute in float64 throughout, such as an unscaled
  GaussianNB);
- outputs ``label``, ``tensor(int64) [N]``, and, only for pipelines with ``predict_proba``,
  ``probabilities``, ``tensor(float) [N, n_classes]`` (columns in ``classes_`` order, no
  ZipMap);
- ``metadata_props``: ``ONNX_METADATA_KEYS`` (sha256 of the pickle bytes it is the twin of,
  library versions, feature names and classes as JSON).

Measured on a shared 2-core machine (scikit-learn 1.9.1, skl2onnx 1.20.0, onnxruntime 1.32, one
thread), the notebook's pipelines (StandardScaler + estimator) against the pickle on the 333 real
birds and their 999 noisy copies; the export (conversion + proof) takes 50-450 ms per model:

================  ======  ====================  ===================  ==============
model             labels  max prob. difference  ONNX Runtime, 1 row  sklearn, 1 row
================  ======  ====================  ===================  ==============
randomforest      equal   6.6e-07               ~8 us                ~17,000 us
svm               equal   (no predict_proba)    ~7 us                ~260 us
gradientboosting  equal   2.3e-07               ~10 us               ~840 us
knn               equal   2.4e-08               ~350 us              ~1,300 us
================  ======  ====================  ===================  ==============
"""

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import skl2onnx
import sklearn
from onnx import TensorProto, helper
from onnx.compose import add_prefix
from onnx.utils import Extractor
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType
from skl2onnx.sklapi import CastTransformer
from sklearn.pipeline import Pipeline

from penguin_contract import (
    FEATURES,
    FIELDS,
    ONNX_INPUT_NAME,
    ONNX_LABEL_OUTPUT,
    ONNX_METADATA_KEYS,
    ONNX_PROBABILITIES_OUTPUT,
)

PROBABILITY_TOLERANCE = 1e-6
NOISY_COPIES = 3
# Standard deviation of the noise added to each numeric feature, as a fraction of the width of
# its contract range. Categorical and integer fields keep their (valid) codes.
NOISE_FRACTION_OF_RANGE = 0.01
NOISE_SEED = 0
REASON_MAX_CHARS = 300
# Prefix of every name skl2onnx produced, so that the contract's output names are free.
CONVERTED_PREFIX = "skl2onnx_"


@dataclass(frozen=True)
class OnnxTwin:
    """The outcome of an export: the serialized model, or why there is none."""

    model_bytes: bytes | None
    reason: str | None = None


def export_onnx_twin(
    pipeline: Pipeline, pickle_bytes: bytes, X_train: np.ndarray, X_test: np.ndarray
) -> OnnxTwin:
    """Convert ``pipeline`` and return its twin if it agrees with it on the proof rows.

    ``pickle_bytes`` are the exact bytes of the pickle the twin belongs to (its sha256 goes in
    the metadata). Never raises for a pipeline skl2onnx or onnxruntime cannot handle: the
    reason is returned instead, and the caller saves the pickle alone.
    """
    rows = proof_rows(X_train, X_test)
    twin = proven_twin(estimator_in_float, pipeline, pickle_bytes, rows)
    if twin.model_bytes is not None:
        return twin
    in_double = proven_twin(estimator_in_double, pipeline, pickle_bytes, rows)
    if in_double.model_bytes is not None or in_double.reason == twin.reason:
        return in_double
    return OnnxTwin(None, f"{twin.reason}; with the estimator in double: {in_double.reason}")


def proven_twin(
    graph_builder: Callable[[Pipeline], onnx.ModelProto],
    pipeline: Pipeline,
    pickle_bytes: bytes,
    rows: np.ndarray,
) -> OnnxTwin:
    """The graph ``graph_builder`` makes of ``pipeline`` if it agrees with it on ``rows``,
    else why not."""
    try:
        model = graph_builder(pipeline)
    except Exception as error:  # skl2onnx raises many types for what it cannot convert
        return OnnxTwin(None, short(f"skl2onnx cannot convert {steps_of(pipeline)}", error))
    model_bytes = with_metadata(model, pipeline, pickle_bytes).SerializeToString()
    reason = disagreement(model_bytes, pipeline, rows)
    return OnnxTwin(model_bytes if reason is None else None, reason)


def estimator_in_float(pipeline: Pipeline) -> onnx.ModelProto:
    """Preprocessing in double, ``Cast`` to float32, then the estimator (as scikit-learn does)."""
    cast_before_estimator = Pipeline(
        [*pipeline.steps[:-1], ("cast_to_float32", CastTransformer()), pipeline.steps[-1]]
    )
    return convert_with_contract_io(cast_before_estimator, pipeline)


def estimator_in_double(pipeline: Pipeline) -> onnx.ModelProto:
    """The whole pipeline in double; only the probabilities are cast to float32 at the end."""
    return convert_with_contract_io(pipeline, pipeline)


def convert_with_contract_io(to_convert: Pipeline, fitted: Pipeline) -> onnx.ModelProto:
    """Convert ``to_convert`` with the contract's input; rename and prune to its outputs."""
    estimator = fitted[-1]
    with warnings.catch_warnings():
        # skl2onnx reads attributes scikit-learn has deprecated (SVC.probA_ in 1.9): the
        # student cannot act on that, and the proof below checks the result anyway.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        converted = convert_sklearn(
            to_convert,
            initial_types=[(ONNX_INPUT_NAME, DoubleTensorType([None, len(FEATURES)]))],
            options={id(estimator): {"zipmap": False}},
        )
    return contract_outputs(converted, len(fitted.classes_), hasattr(fitted, "predict_proba"))


def contract_outputs(
    converted: onnx.ModelProto, n_classes: int, with_probabilities: bool
) -> onnx.ModelProto:
    """``label`` (int64) and, if wanted, ``probabilities`` (float32) from skl2onnx's outputs.

    skl2onnx names a classifier's outputs itself (label first, then probabilities or, for a
    model without ``predict_proba``, decision scores), so they are renamed through a ``Cast``
    and whatever only fed the unused scores is pruned.
    """
    model = add_prefix(converted, CONVERTED_PREFIX, rename_inputs=False)
    label, scores = (output.name for output in model.graph.output[:2])
    outputs = [(label, ONNX_LABEL_OUTPUT, TensorProto.INT64, [None])]
    if with_probabilities:
        outputs.append((scores, ONNX_PROBABILITIES_OUTPUT, TensorProto.FLOAT, [None, n_classes]))
    del model.graph.output[:]
    for source, name, element_type, shape in outputs:
        model.graph.node.append(helper.make_node("Cast", [source], [name], to=element_type))
        model.graph.output.append(helper.make_tensor_value_info(name, element_type, shape))
    return Extractor(model).extract_model([ONNX_INPUT_NAME], [name for _, name, _, _ in outputs])


def with_metadata(
    model: onnx.ModelProto, pipeline: Pipeline, pickle_bytes: bytes
) -> onnx.ModelProto:
    """Set ``metadata_props`` to exactly ``ONNX_METADATA_KEYS``."""
    values = (
        hashlib.sha256(pickle_bytes).hexdigest(),
        sklearn.__version__,
        skl2onnx.__version__,
        json.dumps(list(FEATURES)),
        json.dumps([int(code) for code in pipeline.classes_]),
    )
    helper.set_model_props(model, dict(zip(ONNX_METADATA_KEYS, values, strict=True)))
    return model


def proof_rows(X_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """Every given row, then ``NOISY_COPIES`` noisy copies of each (seeded, clipped to the
    contract's ranges; only the numeric fields move)."""
    rows = np.concatenate([X_train, X_test]).astype(np.float64)
    rng = np.random.default_rng(NOISE_SEED)
    copies = [rows]
    for _ in range(NOISY_COPIES):
        noisy = rows.copy()
        for column, field in enumerate(FIELDS):
            if field.kind == "number":
                scale = NOISE_FRACTION_OF_RANGE * (field.maximum - field.minimum)
                noisy[:, column] += rng.normal(0.0, scale, size=len(rows))
                noisy[:, column] = noisy[:, column].clip(field.minimum, field.maximum)
        copies.append(noisy)
    return np.concatenate(copies)


def inference_session(model_bytes: bytes) -> onnxruntime.InferenceSession:
    """A CPU session with one intra- and one inter-op thread, as the API runs it."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the proof reports what matters
    return onnxruntime.InferenceSession(
        model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


def disagreement(model_bytes: bytes, pipeline: Pipeline, rows: np.ndarray) -> str | None:
    """Why the ONNX model is not a faithful twin of ``pipeline`` on ``rows``; None if it is."""
    try:
        session = inference_session(model_bytes)
    except Exception as error:  # onnxruntime raises its own exception types
        return short("onnxruntime cannot load the converted graph", error)
    problem = signature_problem(session, pipeline)
    if problem:
        return problem
    try:
        results = session.run(None, {ONNX_INPUT_NAME: rows})
    except Exception as error:
        return short("onnxruntime cannot run the converted graph", error)
    outputs = dict(zip(output_names(session), results, strict=True))
    labels, expected_labels = outputs[ONNX_LABEL_OUTPUT], pipeline.predict(rows)
    if labels.shape != expected_labels.shape:
        return f"labels have shape {labels.shape}, expected {expected_labels.shape}"
    wrong = int(np.sum(labels != expected_labels))
    if wrong:
        return f"labels differ on {wrong} of {len(rows)} rows"
    if ONNX_PROBABILITIES_OUTPUT in outputs:
        return probabilities_problem(outputs[ONNX_PROBABILITIES_OUTPUT], pipeline, rows)
    return None


def output_names(session: onnxruntime.InferenceSession) -> list[str]:
    return [output.name for output in session.get_outputs()]


def signature_problem(session: onnxruntime.InferenceSession, pipeline: Pipeline) -> str | None:
    """The graph's inputs and outputs must be exactly the contract's."""
    inputs = [(node.name, node.type) for node in session.get_inputs()]
    outputs = [(node.name, node.type) for node in session.get_outputs()]
    expected_outputs = [(ONNX_LABEL_OUTPUT, "tensor(int64)")]
    if hasattr(pipeline, "predict_proba"):
        expected_outputs.append((ONNX_PROBABILITIES_OUTPUT, "tensor(float)"))
    if inputs != [(ONNX_INPUT_NAME, "tensor(double)")] or outputs != expected_outputs:
        return f"the graph's inputs {inputs} and outputs {outputs} are not the contract's"
    return None


def probabilities_problem(probabilities, pipeline: Pipeline, rows: np.ndarray) -> str | None:
    expected = pipeline.predict_proba(rows)
    if probabilities.shape != expected.shape:
        return f"probabilities have shape {probabilities.shape}, expected {expected.shape}"
    difference = np.abs(probabilities.astype(np.float64) - expected).max(axis=1)
    off = ~(difference <= PROBABILITY_TOLERANCE)  # NaN counts as off
    if off.any():
        return (
            f"probabilities differ by up to {np.nanmax(difference):.1e} on {int(off.sum())} "
            f"of {len(rows)} rows (tolerance {PROBABILITY_TOLERANCE:.0e})"
        )
    return None


def steps_of(pipeline: Pipeline) -> str:
    return " -> ".join(type(step).__name__ for _, step in pipeline.steps)


def short(context: str, error: Exception) -> str:
    """``context: first line of the error``, cut to ``REASON_MAX_CHARS``."""
    lines = str(error).strip().splitlines()
    detail = lines[0] if lines else type(error).__name__
    reason = f"{context}: {detail}"
    return reason if len(reason) <= REASON_MAX_CHARS else reason[: REASON_MAX_CHARS - 3] + "..."

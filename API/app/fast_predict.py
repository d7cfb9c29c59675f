"""Predictions of the common pipelines without scikit-learn's per-call overhead, to the last bit.

The request schema has already validated the rows (float64, n x 7, finite). On one row,
scikit-learn's own checks cost far more than the model's arithmetic: a StandardScaler + SVC
pipeline spends ~300 µs in input validation (DataFrame detection, feature names, tags,
check_is_fitted) around ~10 µs of work, and a random forest's predict_proba dispatches every
tree through joblib (~10 ms instead of ~1.5 ms for 100 trees). Each fast path below does what
scikit-learn does after its validation, with the same arithmetic in the same order; anything
it does not recognise goes through the pipeline. ``load_model`` compares both on probe rows
before a model is served through here (``agrees_with_pipeline``), and the tests compare them
on every real bird.
"""

from collections.abc import Callable

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, NuSVC

_FORESTS = (RandomForestClassifier, ExtraTreesClassifier)
_SUPPORT_VECTOR_MACHINES = (SVC, NuSVC)

Estimator = object
Transform = Callable[[np.ndarray], np.ndarray]


def predict(pipeline: Pipeline, rows: np.ndarray) -> np.ndarray:
    """``pipeline.predict(rows)``."""
    final = pipeline[-1]
    if _is_dense_svm(final):
        features = np.ascontiguousarray(transform(pipeline, rows), dtype=np.float64)
        return final.classes_.take(np.asarray(final._dense_predict(features), dtype=np.intp))
    return pipeline.predict(rows)


def predict_proba(pipeline: Pipeline, rows: np.ndarray) -> np.ndarray:
    """``pipeline.predict_proba(rows)``."""
    final = pipeline[-1]
    if _is_plain_forest(final):
        return _forest_proba(final, transform(pipeline, rows))
    if _is_plain_gradient_boosting(final):
        return _gradient_boosting_proba(final, transform(pipeline, rows))
    return pipeline.predict_proba(rows)


def has_fast_path(pipeline: Pipeline) -> bool:
    final = pipeline[-1]
    return _is_dense_svm(final) or _is_plain_forest(final) or _is_plain_gradient_boosting(final)


def agrees_with_pipeline(pipeline: Pipeline, rows: np.ndarray, has_proba: bool) -> bool:
    """Whether the fast paths give exactly the pipeline's answers on ``rows``."""
    if not np.array_equal(predict(pipeline, rows), pipeline.predict(rows)):
        return False
    return not has_proba or np.array_equal(
        predict_proba(pipeline, rows), pipeline.predict_proba(rows)
    )


def transform(pipeline: Pipeline, rows: np.ndarray) -> np.ndarray:
    """Every step but the last, applied to ``rows``."""
    features = rows
    for _, step in pipeline.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        if type(step) is StandardScaler:
            features = _standard_scale(step, features)
        else:
            features = step.transform(features)
    return features


def _standard_scale(scaler: StandardScaler, features: np.ndarray) -> np.ndarray:
    """StandardScaler.transform on a dense float64 array: subtract the mean, then divide."""
    scaled = np.array(features, dtype=np.float64)
    if scaler.with_mean:
        scaled -= scaler.mean_
    if scaler.with_std:
        scaled /= scaler.scale_
    return scaled


def _is_dense_svm(final: Estimator) -> bool:
    """An exact SVC/NuSVC fitted on dense data with a built-in kernel, whose predict is
    libsvm's label (``break_ties`` takes the argmax of the decision function instead)."""
    return (
        type(final) in _SUPPORT_VECTOR_MACHINES
        and hasattr(final, "support_vectors_")
        and not final._sparse
        and isinstance(final.kernel, str)
        and final.kernel != "precomputed"
        and not final.break_ties
    )


def _is_plain_forest(final: Estimator) -> bool:
    """Exactly a single-output sklearn forest (a subclass may change how it predicts)."""
    return type(final) in _FORESTS and getattr(final, "n_outputs_", None) == 1


def _forest_proba(forest: RandomForestClassifier, features: np.ndarray) -> np.ndarray:
    """The trees' probabilities summed in order and divided by their number, as sklearn does."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    total = np.zeros((features.shape[0], forest.n_classes_), dtype=np.float64)
    for tree in forest.estimators_:
        total += tree.predict_proba(features, check_input=False)
    total /= len(forest.estimators_)
    return total


def _is_plain_gradient_boosting(final: Estimator) -> bool:
    return type(final) is GradientBoostingClassifier and hasattr(final, "estimators_")


def _gradient_boosting_proba(model: GradientBoostingClassifier, features: np.ndarray) -> np.ndarray:
    """GradientBoostingClassifier.predict_proba after its validation (float32, C order)."""
    raw = model._raw_predict(np.ascontiguousarray(features, dtype=np.float32))
    if raw.shape[1] == 1:
        raw = raw.ravel()
    return model._loss.predict_proba(raw)

"""app.forest: the trees' probabilities, summed directly, equal the forest's to the last bit."""

import joblib
import numpy as np
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from support.models import penguins

from app.forest import is_plain_forest, predict_proba
from penguin_contract import FEATURES


def _rows() -> np.ndarray:
    """Every real bird, plus noisy copies that land in other leaves."""
    real = penguins()[list(FEATURES)].to_numpy(dtype=np.float64)
    noisy = real + np.random.default_rng(0).normal(0, 2, real.shape)
    return np.vstack([real, noisy])


def test_forest_probabilities_are_identical_to_scikit_learns(model_store):
    model_store.train({"extratrees": ExtraTreesClassifier(n_estimators=20, random_state=3)})
    rows = _rows()
    for name in ("randomforest", "extratrees"):
        pipeline = joblib.load(model_store.model_path(name))
        assert is_plain_forest(pipeline)
        assert np.array_equal(predict_proba(pipeline, rows), pipeline.predict_proba(rows))
        assert np.array_equal(predict_proba(pipeline, rows[:1]), pipeline.predict_proba(rows[:1]))


def test_other_models_go_through_the_pipeline(trained_models):
    pipeline = joblib.load(trained_models.model_path("gradientboosting"))
    assert not is_plain_forest(pipeline)
    rows = _rows()[:5]
    assert np.array_equal(predict_proba(pipeline, rows), pipeline.predict_proba(rows))


def test_a_forest_subclass_is_not_taken_for_a_plain_forest(trained_models):
    class TweakedForest(RandomForestClassifier):
        pass

    pipeline = joblib.load(trained_models.model_path("randomforest"))
    pipeline.steps[-1] = ("model", TweakedForest())
    assert not is_plain_forest(pipeline)

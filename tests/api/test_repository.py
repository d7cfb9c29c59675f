"""Discovery and the loaded-model cache (app/repository.py), on real trained pickles."""

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import pytest
from support.models import ModelStore

from app.errors import ModelNotFoundError
from app.report import MetricsReport
from app.repository import ModelRepository


def test_a_loaded_model_is_reused_while_its_file_is_unchanged(model_store):
    repository = ModelRepository(model_store.models_dir)

    first = repository.get("randomforest")

    assert repository.get("randomforest") is first
    assert repository.cached("randomforest") is first
    assert first.status == "ok"


def test_concurrent_first_requests_load_once(model_store):
    repository = ModelRepository(model_store.models_dir)
    start = threading.Barrier(8)

    def load(_):
        start.wait()
        return repository.get("gradientboosting")

    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(load, range(8)))

    assert all(model is loaded[0] for model in loaded)


def test_a_retrained_file_is_loaded_again_and_never_served_stale(model_store: ModelStore):
    repository = ModelRepository(model_store.models_dir)
    old = repository.get("svm")
    from sklearn.svm import SVC

    model_store.train({"svm": SVC(kernel="linear", C=0.5)})

    assert repository.cached("svm") is None
    new = repository.get("svm")
    assert new is not old
    assert new.sha256 != old.sha256
    assert new.pipeline[-1].kernel == "linear"


def test_same_size_rewrite_with_restored_mtime_is_still_detected(model_store):
    """os.replace gives a new inode even when size and mtime are made identical."""
    repository = ModelRepository(model_store.models_dir)
    path = model_store.model_path("svm")
    old = repository.get("svm")
    stat = path.stat()
    replacement = path.with_name(".svm_model.pkl.x.tmp")
    replacement.write_bytes(path.read_bytes())
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)

    assert repository.get("svm") is not old


def test_a_deleted_model_is_gone(model_store):
    repository = ModelRepository(model_store.models_dir)
    repository.get("svm")
    model_store.model_path("svm").unlink()

    with pytest.raises(ModelNotFoundError):
        repository.get("svm")
    assert "svm" not in repository.discover()


def test_loaded_estimators_use_one_thread(model_store, tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    model_store.train({"parallel": RandomForestClassifier(n_estimators=10, n_jobs=-1)})
    assert joblib.load(model_store.model_path("parallel"))[-1].n_jobs == -1

    loaded = ModelRepository(model_store.models_dir).get("parallel")

    assert loaded.pipeline[-1].n_jobs == 1


def test_report_is_reread_only_when_its_file_changes(model_store):
    report = MetricsReport(model_store.report_path)
    first = report.rows()

    assert report.rows() is first
    os.utime(model_store.report_path, ns=(1, 1))
    second = report.rows()
    assert second is not first
    assert second.keys() == first.keys()


def test_after_one_listing_every_model_is_served_from_the_cache(model_store):
    for index in range(20):
        shutil.copy(model_store.model_path("svm"), model_store.model_path(f"copy{index:02d}"))
    repository = ModelRepository(model_store.models_dir)
    discovered = repository.discover()
    assert repository.cached_models(discovered) == {}

    loaded = repository.load_models(discovered)

    assert loaded.keys() == discovered.keys() and len(loaded) == 23
    assert repository.cached_models(repository.discover()) == loaded

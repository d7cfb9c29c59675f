"""The registry: discovery and the loaded-model cache, on real trained pickles."""

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor

import joblib
import pytest
from sklearn.svm import SVC
from support.models import ModelStore

from app.errors import ModelNotFoundError
from app.models.registry import ModelRegistry

MiB = 1024 * 1024


def registry_of(store: ModelStore, allow_pickle: bool = True) -> ModelRegistry:
    return ModelRegistry(store.models_dir, max_model_bytes=64 * MiB, allow_pickle=allow_pickle)


def test_a_loaded_model_is_reused_while_its_file_is_unchanged(model_store):
    registry = registry_of(model_store)

    first = registry.get("randomforest")

    assert registry.get("randomforest") is first
    assert first.status == "ok"


def test_concurrent_first_requests_load_once(model_store):
    registry = registry_of(model_store)
    start = threading.Barrier(8)

    def load(_):
        start.wait()
        return registry.get("gradientboosting")

    with ThreadPoolExecutor(8) as pool:
        loaded = list(pool.map(load, range(8)))

    assert all(model is loaded[0] for model in loaded)


def test_a_retrained_file_is_loaded_again_and_never_served_stale(model_store: ModelStore):
    registry = registry_of(model_store, allow_pickle=True)
    old = registry.get("svm")

    model_store.train({"svm": SVC(kernel="linear", C=0.5)})

    new = registry.get("svm")
    assert new is not old
    assert new.sha256 != old.sha256
    assert new.entry.pkl != old.entry.pkl


def test_same_size_rewrite_with_restored_mtime_is_still_detected(model_store):
    """os.replace gives a new inode even when size and mtime are made identical."""
    registry = registry_of(model_store)
    path = model_store.model_path("svm")
    old = registry.get("svm")
    stat = path.stat()
    replacement = path.with_name(".svm_model.pkl.x.tmp")
    replacement.write_bytes(path.read_bytes())
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)

    assert registry.get("svm") is not old


def test_a_deleted_model_is_gone(model_store):
    registry = registry_of(model_store)
    registry.get("svm")
    model_store.model_path("svm").unlink()

    with pytest.raises(ModelNotFoundError):
        registry.get("svm")
    assert "svm" not in [model.name for model in registry.all()]


def test_pickled_estimators_are_served_with_one_thread(model_store):
    from sklearn.ensemble import RandomForestClassifier

    model_store.train({"parallel": RandomForestClassifier(n_estimators=10, n_jobs=-1)})
    model_store.models_dir.joinpath("parallel_model.onnx").unlink(missing_ok=True)
    assert joblib.load(model_store.model_path("parallel"))[-1].n_jobs == -1

    loaded = registry_of(model_store).get("parallel")

    assert loaded.runtime.name == "sklearn"
    assert loaded.runtime.pipeline[-1].n_jobs == 1


def test_after_one_listing_every_model_is_served_from_the_cache(model_store):
    for index in range(20):
        shutil.copy(model_store.model_path("svm"), model_store.model_path(f"copy{index:02d}"))
    registry = registry_of(model_store)

    listed = registry.all()

    assert [model.name for model in listed] == sorted(model.name for model in listed)
    assert len(listed) == 23
    assert all(registry.get(model.name) is model for model in listed)
    assert registry.all() == listed


def test_a_file_rewritten_in_place_is_loaded_again(model_store):
    """No directory event is needed: the file's own identity (size, mtime) changed."""
    registry = registry_of(model_store)
    old = registry.get("svm")
    data = model_store.model_path("randomforest").read_bytes()
    with open(model_store.model_path("svm"), "r+b") as handle:  # same inode
        handle.truncate(0)
        handle.write(data)

    assert registry.get("svm").sha256 != old.sha256

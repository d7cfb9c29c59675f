"""Model discovery and the loaded-model cache.

A listing looks at MODELS_DIR again whenever its inotify watch saw any change (see
app.watch), and a prediction stats the requested file, so new, retrained and deleted models
show on the very next request.
A loaded pipeline is reused while its file key (path, mtime_ns, size, inode) is unchanged;
concurrent first requests for the same name load it once (a lock per name).
"""

import hashlib
import io
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from numbers import Number
from pathlib import Path
from stat import S_ISREG
from typing import Literal

import joblib
import numpy as np
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.pipeline import Pipeline

from app import fast_predict
from app.errors import ModelNotFoundError, ModelUnavailableError
from app.files import FileKey
from app.watch import DirectoryWatch
from penguin_contract import FEATURES, FIELDS, SPECIES, model_filename, model_name_from_filename

Status = Literal["ok", "error", "incompatible"]

# warnings.catch_warnings is process-global state, so loads that record warnings take turns.
_WARNINGS_LOCK = threading.Lock()
_MAX_REMEMBERED_FILENAMES = 10_000
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _probe_rows(count: int = 64) -> np.ndarray:
    """Valid rows (each field's midpoint, then random values in every field's range) used to
    check that a freshly loaded pipeline predicts, and that its fast path agrees with it."""
    random = np.random.default_rng(0)
    columns = [
        random.integers(f.minimum, f.maximum, count, endpoint=True)
        if f.kind == "integer"
        else random.uniform(f.minimum, f.maximum, count)
        for f in FIELDS
    ]
    midpoint = [(f.minimum + f.maximum) // 2 for f in FIELDS]
    return np.vstack([midpoint, np.column_stack(columns)]).astype(np.float64)


_PROBE_ROWS = _probe_rows()


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model file as loaded: the pipeline when usable, or why it is not."""

    name: str
    key: FileKey
    sha256: str
    status: Status
    reason: str | None = None
    pipeline: Pipeline | None = None
    classes: tuple[int, ...] = ()
    has_proba: bool = False
    # SVC-style models calibrate predict_proba separately from predict, so their label must
    # come from predict; for every other sklearn classifier predict == argmax(predict_proba).
    label_from_proba: bool = False
    # Served through app.fast_predict (checked equal to the pipeline when loaded).
    fast: bool = False

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(SPECIES[code] for code in self.classes)

    @property
    def usable(self) -> bool:
        return self.status == "ok"

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Species codes of ``rows`` (FEATURES order), and their probabilities when the model
        has them."""
        pipeline = self.require_usable()
        predict, predict_proba = (
            (fast_predict.predict, fast_predict.predict_proba)
            if self.fast
            else (Pipeline.predict, Pipeline.predict_proba)
        )
        if not self.has_proba:
            return predict(pipeline, rows), None
        probabilities = predict_proba(pipeline, rows)
        if self.label_from_proba:
            return np.take(self.classes, probabilities.argmax(axis=1)), probabilities
        return predict(pipeline, rows), probabilities

    def require_usable(self) -> Pipeline:
        if self.pipeline is None or self.status != "ok":
            raise ModelUnavailableError(self.name, self.reason or self.status)
        return self.pipeline


class ModelRepository:
    def __init__(self, models_dir: Path) -> None:
        self.models_dir = models_dir
        self._cache: dict[str, LoadedModel] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._names: dict[str, str | None] = {}
        self._watch = DirectoryWatch(models_dir)
        self._signatures_lock = threading.Lock()
        self._signatures: tuple[tuple[str, int, int, int, int], ...] = ()

    def discover(self) -> dict[str, FileKey]:
        """Model name -> file key for every '{name}_model.pkl' that follows the naming rule."""
        found = {name: FileKey.of_stat(path, stat) for name, path, stat in self._scan()}
        for gone in self._cache.keys() - found.keys():
            self._cache.pop(gone, None)
        return found

    def signatures(self) -> tuple[tuple[str, int, int, int, int], ...]:
        """(name, mtime_ns, size, inode, device) of every model file, by name: equal while
        no model file was added, rewritten, replaced or deleted (this runs on every GET
        /models). The files are stat-ed again only when the directory watch says they may
        have changed."""
        with self._signatures_lock:  # a look that finds no change must wait for one that did
            if self._watch.may_have_changed():
                self._signatures = self._stat_signatures()
            return self._signatures

    def close(self) -> None:
        self._watch.close()

    def _stat_signatures(self) -> tuple[tuple[str, int, int, int, int], ...]:
        """One stat per model file, relative to the directory's descriptor."""
        try:
            directory = os.open(self.models_dir, _DIRECTORY_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return ()
        found = []
        try:
            for filename in os.listdir(directory):
                name = self._name_of(filename)
                if name is None:
                    continue
                try:
                    stat = os.stat(filename, dir_fd=directory)
                except FileNotFoundError:  # deleted while listing
                    continue
                if S_ISREG(stat.st_mode):
                    found.append((name, stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev))
        finally:
            os.close(directory)
        found.sort()
        return tuple(found)

    def _scan(self) -> Iterator[tuple[str, str, os.stat_result]]:
        """(model name, path, stat) of every model file in MODELS_DIR."""
        try:
            entries = os.scandir(self.models_dir)
        except (FileNotFoundError, NotADirectoryError):
            return
        with entries:
            for entry in entries:
                name = self._name_of(entry.name)
                if name is None:
                    continue
                try:
                    if entry.is_file():
                        yield name, entry.path, entry.stat()
                except FileNotFoundError:  # deleted while listing
                    continue

    def _name_of(self, filename: str) -> str | None:
        """model_name_from_filename, memoized: a listing sees the same names again and again."""
        try:
            return self._names[filename]
        except KeyError:
            if len(self._names) > _MAX_REMEMBERED_FILENAMES:
                self._names.clear()
            name = self._names[filename] = model_name_from_filename(filename)
            return name

    def path_of(self, name: str) -> Path:
        """Only names that pass the contract's rule (already normalized) reach this."""
        return self.models_dir / model_filename(name)

    def cached(self, name: str) -> LoadedModel | None:
        """The cached model if its file is unchanged; None if it must be (re)loaded.

        Raises ModelNotFoundError when there is no file for ``name``.
        """
        key = FileKey.of_path(self.path_of(name))
        if key is None:
            self._cache.pop(name, None)
            raise ModelNotFoundError(name)
        cached = self._cache.get(name)
        return cached if cached is not None and cached.key == key else None

    def get(self, name: str, key: FileKey | None = None) -> LoadedModel:
        """The model for ``name``, loading it if its file changed (``key``: already stat-ed)."""
        if key is None:
            cached = self.cached(name)
            if cached is not None:
                return cached
        else:
            cached = self._cache.get(name)
            if cached is not None and cached.key == key:
                return cached
        with self._lock_for(name):
            cached = self._cache.get(name)
            current = key or FileKey.of_path(self.path_of(name))
            if cached is not None and cached.key == current:
                return cached
            loaded = load_model(name, self.path_of(name))
            self._cache[name] = loaded
            return loaded

    def cached_models(self, discovered: dict[str, FileKey]) -> dict[str, LoadedModel]:
        """The cached, up-to-date models among ``discovered`` (no file is read)."""
        fresh = {}
        for name, key in discovered.items():
            cached = self._cache.get(name)
            if cached is not None and cached.key == key:
                fresh[name] = cached
        return fresh

    def load_models(self, discovered: dict[str, FileKey]) -> dict[str, LoadedModel]:
        """Every model in ``discovered``, loading those whose file changed (skips vanished)."""
        models = {}
        for name, key in discovered.items():
            try:
                models[name] = self.get(name, key)
            except ModelNotFoundError:  # deleted since the listing
                continue
        return models

    def _lock_for(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())


def load_model(name: str, path: Path) -> LoadedModel:
    """Read, hash and unpickle one model file; a broken file gives a non-ok LoadedModel."""
    try:
        with open(path, "rb") as file:
            key = FileKey.of_fd(path, file.fileno())
            data = file.read()
    except FileNotFoundError:
        raise ModelNotFoundError(name) from None
    except OSError as error:  # e.g. no read permission: an error until the file changes
        key = FileKey.of_path(path)
        if key is None:
            raise ModelNotFoundError(name) from None
        reason = f"the file cannot be read ({error.strerror or error})"
        return LoadedModel(name=name, key=key, sha256="", status="error", reason=reason)
    sha256 = hashlib.sha256(data).hexdigest()

    def broken(status: Status, reason: str) -> LoadedModel:
        return LoadedModel(name=name, key=key, sha256=sha256, status=status, reason=reason)

    try:
        with _WARNINGS_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", InconsistentVersionWarning)
            pipeline = joblib.load(io.BytesIO(data))
    except Exception as error:
        return broken("error", f"the file cannot be unpickled ({type(error).__name__}: {error})")
    for warning in caught:
        if issubclass(warning.category, InconsistentVersionWarning):
            return broken("incompatible", f"incompatible scikit-learn version: {warning.message}")
    try:
        problem = pipeline_problem(pipeline)
        if problem is not None:
            return broken("error", problem)
        _use_one_thread(pipeline)
        has_proba = hasattr(pipeline, "predict_proba")
        pipeline.predict(_PROBE_ROWS)
        if has_proba:
            pipeline.predict_proba(_PROBE_ROWS)
    except Exception as error:
        return broken("error", f"the pipeline cannot be used ({type(error).__name__}: {error})")
    fast = fast_predict.has_fast_path(pipeline) and _fast_path_agrees(pipeline, has_proba)
    return LoadedModel(
        name=name,
        key=key,
        sha256=sha256,
        status="ok",
        pipeline=pipeline,
        classes=tuple(int(code) for code in pipeline.classes_),
        has_proba=has_proba,
        label_from_proba=has_proba and not getattr(pipeline[-1], "probability", False),
        fast=fast,
    )


def _fast_path_agrees(pipeline: Pipeline, has_proba: bool) -> bool:
    try:
        return fast_predict.agrees_with_pipeline(pipeline, _PROBE_ROWS, has_proba)
    except Exception:  # a fast path that fails is simply not used
        return False


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


def _integer_codes(labels: Iterable[object]) -> list[int] | None:
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

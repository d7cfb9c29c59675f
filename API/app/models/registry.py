"""Name -> loaded model: the one cache of model state, and its one invalidation rule.

The directory is listed again only when its inotify watch saw a change (app.models.watch);
a loaded model is reused while its entry (the file identities of the pickle and of its ONNX
twin) equals the entry of the latest listing, and is dropped when the name disappears.
Concurrent first requests for one name load it once (a lock per name).
"""

import threading
from pathlib import Path

from app.errors import ModelNotFoundError
from app.models.files import FileChangedError, ModelEntry, ModelFiles
from app.models.loading import ModelLoader, ServedModel
from app.models.watch import DirectoryWatch

_LOAD_ATTEMPTS = 3


class ModelRegistry:
    def __init__(self, models_dir: Path, max_model_bytes: int, allow_pickle: bool) -> None:
        self.files = ModelFiles(models_dir, max_model_bytes)
        self.loader = ModelLoader(self.files, allow_pickle)
        self._watch = DirectoryWatch(models_dir)
        self._scan_lock = threading.Lock()
        self._entries: dict[str, ModelEntry] = {}
        self._loaded: dict[str, ServedModel] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._version = 0

    def version(self) -> int:
        """Changes whenever an entry or a loaded model changes (a listing built at one
        version describes the directory until the version changes)."""
        self.entries()
        return self._version

    def entries(self) -> dict[str, ModelEntry]:
        """The model entries of MODELS_DIR as of now (cheap when nothing changed)."""
        with self._scan_lock:  # a look that finds no change must wait for one that did
            if self._watch.may_have_changed():
                scanned = self.files.scan()
                if scanned != self._entries:
                    self._entries = scanned
                    self._version += 1
                for gone in self._loaded.keys() - self._entries.keys():
                    del self._loaded[gone]
                for gone in self._load_locks.keys() - self._entries.keys():
                    del self._load_locks[gone]
            return self._entries

    def loaded(self, name: str) -> ServedModel | None:
        """The model already loaded for the current entry of ``name``, without reading any
        file; None when it must be loaded. ModelNotFoundError when there is no such entry."""
        entry = self.entries().get(name)
        if entry is None:
            raise ModelNotFoundError(name)
        model = self._loaded.get(name)
        return model if model is not None and model.entry == entry else None

    def get(self, name: str) -> ServedModel:
        """The model for ``name``, loading it if needed (reads files: call off the loop)."""
        model = self.loaded(name)
        if model is not None:
            return model
        with self._lock_for(name):
            for _ in range(_LOAD_ATTEMPTS):
                entry = self.entries().get(name)
                if entry is None:
                    raise ModelNotFoundError(name)
                model = self._loaded.get(name)
                if model is not None and model.entry == entry:
                    return model
                try:
                    model = self.loader.load(entry)
                except FileChangedError:  # replaced while loading: its event is queued
                    continue
                self._loaded[name] = model
                self._version += 1
                return model
            reason = "the file kept changing while it was being loaded"
            return ServedModel(name, entry, "", "error", reason=reason)

    def all_loaded(self) -> list[ServedModel] | None:
        """Every current model, by name, if all are loaded already; else None."""
        entries = self.entries()
        models = [self._loaded.get(name) for name in sorted(entries)]
        if all(m is not None and m.entry == entries[m.name] for m in models):
            return models  # type: ignore[return-value]
        return None

    def load_all(self) -> list[ServedModel]:
        """Every current model, by name, loading those that changed (call off the loop)."""
        models = []
        for name in sorted(self.entries()):
            try:
                models.append(self.get(name))
            except ModelNotFoundError:  # deleted meanwhile
                continue
        return models

    def close(self) -> None:
        self._watch.close()

    def _lock_for(self, name: str) -> threading.Lock:
        with self._scan_lock:
            return self._load_locks.setdefault(name, threading.Lock())

"""Name -> loaded model: the one cache of model state, with one invalidation rule: a loaded
model is reused while the identity (inode, size, mtime) of its pickle and ONNX twin is the one
it was loaded from. Two ``lstat`` per look, so every request sees the directory as it is, from
any process or container; loads take turns, so one file is loaded once."""

import threading
from pathlib import Path

from app.errors import ModelNotFoundError
from app.models.files import FileChangedError, ModelFiles
from app.models.loading import ModelLoader, ServedModel

_LOAD_ATTEMPTS = 3


class NotLoadedError(Exception):
    """The model must be loaded (read from disk) before it can serve."""


class ModelRegistry:
    def __init__(self, models_dir: Path, max_model_bytes: int, allow_pickle: bool) -> None:
        self.files = ModelFiles(models_dir, max_model_bytes)
        self.loader = ModelLoader(self.files, allow_pickle)
        self._loaded: dict[str, ServedModel] = {}
        self._load_lock = threading.Lock()

    def get(self, name: str, load: bool = True) -> ServedModel:
        """The model for ``name`` as its files are now, loaded if they changed (which reads
        them; with ``load=False``, NotLoadedError instead). ModelNotFoundError if absent."""
        for _ in range(_LOAD_ATTEMPTS):
            entry = self.files.entry(name)
            if entry is None:
                self._loaded.pop(name, None)
                raise ModelNotFoundError(name)
            model = self._loaded.get(name)
            if model is not None and model.entry == entry:
                return model
            if not load:
                raise NotLoadedError(name)
            with self._load_lock:
                model = self._loaded.get(name)
                if model is None or model.entry != entry:
                    try:
                        model = self.loader.load(entry)
                    except FileChangedError:  # replaced while it was read: look again
                        continue
                    self._loaded[name] = model
                return model
        reason = "the file kept changing while it was being loaded"
        return ServedModel(name, entry, "", "error", reason=reason)

    def all(self, load: bool = True) -> list[ServedModel]:
        """Every model of the directory, by name (deleted meanwhile: left out)."""
        names = self.files.names()
        for gone in self._loaded.keys() - set(names):
            self._loaded.pop(gone, None)
        models = []
        for name in names:
            try:
                models.append(self.get(name, load))
            except ModelNotFoundError:
                continue
        return models

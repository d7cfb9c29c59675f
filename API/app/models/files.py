"""What MODELS_DIR holds: one entry per '{name}_model.pkl', and reading a file safely.

Only regular files are models; a symlink counts if it resolves inside MODELS_DIR. FIFOs,
devices, links leading outside, loops and files over MAX_MODEL_BYTES are listed as errors
with the reason, never read; a directory is no model (404). Files are opened with O_NONBLOCK
(a FIFO cannot hang it), checked again with fstat, and read with a bounded read.
"""

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from penguin_contract import model_filename, model_name_from_filename, onnx_filename

_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@dataclass(frozen=True, slots=True)
class FileKey:
    """A file's identity: any rewrite or os.replace changes it."""

    mtime_ns: int
    size: int
    inode: int
    device: int

    @classmethod
    def of(cls, status: os.stat_result) -> "FileKey":
        return cls(status.st_mtime_ns, status.st_size, status.st_ino, status.st_dev)


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One '{name}_model.pkl' entry: its file (and its ONNX twin's), or why it is no model."""

    name: str
    pkl: FileKey | None
    onnx: FileKey | None = None
    problem: str | None = None  # set exactly when pkl is None


class FileChangedError(OSError):
    """The file at the path is not the one that was listed (replaced meanwhile)."""


class ModelFiles:
    def __init__(self, models_dir: Path, max_bytes: int) -> None:
        self.models_dir = models_dir
        self.max_bytes = max_bytes

    def names(self) -> list[str]:
        """Every name with a '{name}_model.pkl' entry by the contract's rule, sorted."""
        try:
            filenames = os.listdir(self.models_dir)
        except OSError:  # no directory (yet), or unreadable: /ready says which
            return []
        return sorted(filter(None, map(model_name_from_filename, filenames)))

    def entry(self, name: str) -> ModelEntry | None:
        """The model ``name`` as its files are now; None if there is none (or a directory)."""
        pkl, problem = self._examine(model_filename(name))
        if pkl is None and problem is None:
            return None
        onnx = self._examine(onnx_filename(name))[0] if pkl is not None else None
        return ModelEntry(name, pkl, onnx, problem)

    def problem(self) -> str | None:
        """Why MODELS_DIR cannot be listed, or None (used by /ready)."""
        try:
            with os.scandir(self.models_dir) as entries:
                next(entries, None)
        except FileNotFoundError:
            return f"models directory {self.models_dir} does not exist"
        except OSError as error:
            return f"models directory {self.models_dir} is not readable: {error.strerror}"
        return None

    def pkl_path(self, name: str) -> Path:
        return self.models_dir / model_filename(name)

    def onnx_path(self, name: str) -> Path:
        return self.models_dir / onnx_filename(name)

    def read(self, path: Path, key: FileKey) -> bytes:
        """The bytes of the file listed as ``key``; FileChangedError if it was replaced."""
        return read_regular_file(path, self.max_bytes, key)

    def _examine(self, filename: str) -> tuple[FileKey | None, str | None]:
        """(key, None) for a servable file; (None, why not) for a file that cannot be
        served; (None, None) if absent or a directory (no model)."""
        path = os.path.join(self.models_dir, filename)
        try:
            status = os.lstat(path)
            if stat.S_ISLNK(status.st_mode):
                root = os.path.realpath(self.models_dir)
                target = os.path.realpath(path, strict=True)
                if os.path.commonpath([root, target]) != root:
                    return None, "it is a symlink that points outside MODELS_DIR"
                status = os.stat(target)
        except FileNotFoundError:
            return None, None  # gone meanwhile, or a dangling symlink
        except OSError as error:  # ELOOP, EACCES, ...
            return None, f"it cannot be inspected ({error.strerror or error})"
        if stat.S_ISDIR(status.st_mode):
            return None, None
        if not stat.S_ISREG(status.st_mode):
            kind = _KINDS.get(stat.S_IFMT(status.st_mode), "not a regular file")
            return None, f"it is {kind}, not a regular file"
        if status.st_size > self.max_bytes:
            return None, (
                f"it is {status.st_size} bytes, more than MAX_MODEL_BYTES ({self.max_bytes})"
            )
        return FileKey.of(status), None


def read_regular_file(
    path: Path, max_bytes: int, expected: FileKey | None = None, follow_symlinks: bool = True
) -> bytes:
    """At most ``max_bytes`` of the regular file at ``path`` (with the ``expected`` identity),
    never waiting on a FIFO: OSError, FileChangedError, or ELOOP for a refused symlink."""
    fd = os.open(path, _READ_FLAGS if follow_symlinks else _READ_FLAGS | os.O_NOFOLLOW)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise FileChangedError(f"{path.name} is not a regular file")
        if expected is not None and FileKey.of(status) != expected:
            raise FileChangedError(f"{path.name} changed while it was being read")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > max_bytes:
        raise FileChangedError(f"{path.name} is larger than {max_bytes} bytes")
    return b"".join(chunks)

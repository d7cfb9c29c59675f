"""File identity used by the caches: a file is 'the same' while this key is unchanged."""

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileKey:
    """path + mtime_ns + size + inode/device: any rewrite or os.replace changes it."""

    path: str
    mtime_ns: int
    size: int
    inode: int
    device: int

    @classmethod
    def of_stat(cls, path: Path | str, stat: os.stat_result) -> "FileKey":
        return cls(str(path), stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev)

    @classmethod
    def of_path(cls, path: Path | str) -> "FileKey | None":
        """The key of the file now at ``path``, or None if there is none."""
        try:
            return cls.of_stat(path, os.stat(path))
        except (FileNotFoundError, NotADirectoryError):
            return None

    @classmethod
    def of_fd(cls, path: Path | str, fd: int) -> "FileKey":
        """The key of the file actually opened, immune to a replace after the open."""
        return cls.of_stat(path, os.fstat(fd))

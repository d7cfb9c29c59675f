"""predictions.log: one JSON line per prediction, appended before the response is sent.

Every append is ONE ``os.write`` on an ``O_APPEND`` descriptor, so several workers (processes)
appending to the same file never interleave or lose lines; the data reaches the kernel before
the response goes out (fsync after each write too when LOG_FSYNC=true). If the write fails the
caller gets PredictionLogError and must not return the prediction.

A process killed in the middle of a large write (a 1000-row batch spans many pages, and Linux
stops a write between pages for SIGKILL) leaves a partial last line. Appends therefore take
an exclusive ``flock`` (released by the kernel when its holder dies), and the next writer cuts
such a tail off before appending, so a partial line is never followed by another.
"""

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.errors import PredictionLogError

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC  # read: to check the tail
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}  # filesystems without flock
_TAIL_BLOCK = 64 * 1024
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def utc_timestamp() -> str:
    """UTC, ISO 8601 with offset and milliseconds: 2026-11-26T14:17:45.123+00:00."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def json_line(record: dict[str, Any]) -> bytes:
    return (_dumps(record) + "\n").encode()


class PredictionLog:
    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def append(self, lines: bytes) -> None:
        """Append whole lines with a single write, or raise PredictionLogError."""
        with self._lock:
            try:
                fd = self._open_fd()
                with _exclusive(fd):
                    _cut_torn_tail(fd)
                    written = os.write(fd, lines)
                    if written != len(lines):
                        _remove_partial_write(fd, written)
                        raise OSError(
                            errno.ENOSPC, f"short write ({written} of {len(lines)} bytes)"
                        )
                if self.fsync:
                    os.fsync(fd)
            except OSError as error:
                self._close()
                raise PredictionLogError(error.strerror or str(error)) from error

    def problem(self) -> str | None:
        """Why predictions could not be logged right now, or None (used by /ready)."""
        directory = self.path.parent
        if not directory.is_dir():
            return f"results directory {directory} does not exist"
        try:
            fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        except OSError as error:
            return f"cannot open {self.path.name} for appending: {error.strerror}"
        try:
            if os.fstatvfs(fd).f_bavail == 0:
                return f"no space left on the device holding {directory}"
        finally:
            os.close(fd)
        return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _open_fd(self) -> int:
        """The open descriptor, reopened if the file was deleted or replaced meanwhile."""
        try:
            stat = os.stat(self.path)
            identity = (stat.st_dev, stat.st_ino)
        except FileNotFoundError:
            identity = None
        if self._fd is not None and identity == self._identity:
            return self._fd
        self._close()
        fd = os.open(self.path, _OPEN_FLAGS, 0o644)
        stat = os.fstat(fd)
        self._fd, self._identity = fd, (stat.st_dev, stat.st_ino)
        return fd

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._identity = None, None


@contextlib.contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    """Hold the file's flock (every writer of the log takes it), where the filesystem has one."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError as error:
        if error.errno not in _NO_LOCKS:
            raise
        yield
        return
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _cut_torn_tail(fd: int) -> None:
    """Truncate the file after its last newline if it does not end with one."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    end = size
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            os.ftruncate(fd, start + newline + 1)
            return
        end = start
    os.ftruncate(fd, 0)


def _remove_partial_write(fd: int, written: int) -> None:
    """Cut off the bytes of a short write (disk full), so the log never ends in a torn line.

    With O_APPEND the offset is just past our bytes. If another process has appended since
    (only possible where the filesystem has no flock), cutting would drop its line too, so the
    file is left as it is; the next append cuts the torn tail instead.
    """
    end = os.lseek(fd, 0, os.SEEK_CUR)
    if written > 0 and os.fstat(fd).st_size == end:
        os.ftruncate(fd, end - written)

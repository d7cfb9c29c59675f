"""The prediction log: one JSON line per prediction, appended before the answer is sent.

- Whole lines: each append is ONE ``os.write`` (``O_APPEND``) under an exclusive ``flock``
  every writer (worker) takes. If it fails, the prediction is not returned (503).
- Nothing torn after kill -9: the next writer cuts a partial last line of ours (one that
  starts as ours do, no longer than one); anything else is kept, after a newline.
- Nobody can stall or redirect it: ``O_NOFOLLOW`` (a symlink gets 503), regular files only,
  another process's lock waited for LOG_LOCK_TIMEOUT_S at most.
- Bounded: past LOG_MAX_BYTES it is renamed to ``.1`` (``.1`` to ``.2``...; LOG_BACKUPS kept)
  under the lock; a writer that then finds another file at the path reopens it.
"""

import contextlib
import errno
import fcntl
import os
import stat
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from app.errors import PredictionLogError

_OPEN_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}  # filesystems without flock
LINE_PREFIX = b'{"timestamp":"'
MAX_LINE_BYTES = 4096  # one line is ~0.5 kB: a longer partial tail is not ours
_LOCK_POLL_S = 0.002
_REOPEN_ATTEMPTS = 5


def utc_timestamp() -> str:
    """UTC, ISO 8601 with offset and milliseconds: 2026-11-26T14:17:45.123+00:00."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class PredictionLog:
    def __init__(
        self,
        path: Path,
        *,
        fsync: bool = False,
        max_bytes: int = 64 * 1024 * 1024,
        backups: int = 5,
        lock_timeout_s: float = 1.0,
    ) -> None:
        self.path = path
        self.fsync = fsync
        self.max_bytes = max_bytes
        self.backups = backups
        self.lock_timeout_s = lock_timeout_s
        self._fd: int | None = None
        self._lock = threading.Lock()  # this process's writers, one at a time

    def append(self, lines: bytes, wait: bool = True) -> bool:
        """Append whole lines, waiting at most LOG_LOCK_TIMEOUT_S for a lock; with ``wait``
        false, never block: False when it would (a lock is held, or LOG_FSYNC is on)."""
        if not wait:
            if self.fsync or not self._lock.acquire(blocking=False):
                return False
        elif not self._lock.acquire(timeout=self.lock_timeout_s):
            raise PredictionLogError("the log is busy")
        deadline = time.monotonic() + self.lock_timeout_s if wait else None
        try:
            return self._append(lines, deadline)
        except (OSError, PredictionLogError) as error:
            self._close()
            if isinstance(error, PredictionLogError):
                raise
            raise PredictionLogError(error.strerror or str(error)) from error
        finally:
            self._lock.release()

    def problem(self) -> str | None:
        """Why predictions could not be logged right now, or None (used by /ready)."""
        directory = self.path.parent
        if not directory.is_dir():
            return f"results directory {directory} does not exist"
        try:
            fd = _open(self.path)
        except PredictionLogError as error:
            return error.reason
        try:
            if not _lock_within(fd, time.monotonic() + 0.05):
                return f"{self.path.name} is locked by another process"
            fcntl.flock(fd, fcntl.LOCK_UN)
            if os.fstatvfs(fd).f_bavail == 0:
                return f"no space left on the device holding {directory}"
        finally:
            os.close(fd)
        return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _append(self, lines: bytes, deadline: float | None) -> bool:
        for _ in range(_REOPEN_ATTEMPTS):
            if self._fd is None:
                self._fd = _open(self.path)
            fd = self._fd
            if not _lock_within(fd, deadline):
                if deadline is None:
                    return False
                raise PredictionLogError(
                    f"another process holds a lock on {self.path.name} "
                    f"(waited {self.lock_timeout_s:g} s)"
                )
            try:
                opened = os.fstat(fd)
                if not self._names_this_file(opened) or self._rotate_if_due(
                    opened.st_size, len(lines)
                ):
                    self._close()  # rotated (by us or another writer) or replaced: reopen
                    continue
                _write_whole_lines(fd, lines, opened.st_size)
                if self.fsync:
                    os.fsync(fd)
                return True
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
        raise PredictionLogError(f"{self.path.name} kept changing while being written")

    def _names_this_file(self, opened: os.stat_result) -> bool:
        try:
            at_path = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return (at_path.st_dev, at_path.st_ino) == (opened.st_dev, opened.st_ino)

    def _rotate_if_due(self, size: int, incoming: int) -> bool:
        """Rename the full file away (under its lock); True if it was rotated."""
        if size == 0 or size + incoming <= self.max_bytes:
            return False
        for index in range(self.backups - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}.{index}", f"{self.path}.{index + 1}")
        os.replace(self.path, f"{self.path}.1")
        return True

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


def _open(path: Path) -> int:
    """The log's descriptor; PredictionLogError for a symlink or a non-regular file."""
    try:
        fd = os.open(path, _OPEN_FLAGS, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PredictionLogError(f"{path.name} is a symlink; it is not followed") from None
        raise PredictionLogError(
            f"cannot open {path.name} for appending: {error.strerror}"
        ) from error
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PredictionLogError(f"{path.name} is not a regular file")
    return fd


def _lock_within(fd: int, deadline: float | None) -> bool:
    """Take the exclusive flock, polling until ``deadline`` (None: no wait). True if held
    (or if the filesystem has no locks)."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if deadline is None or time.monotonic() >= deadline:
                return False
            time.sleep(_LOCK_POLL_S)
        except OSError as error:
            if error.errno in _NO_LOCKS:
                return True
            raise


def _write_whole_lines(fd: int, lines: bytes, size: int) -> None:
    """Repair a torn tail of the ``size``-byte file, then append ``lines`` with one write
    (ENOSPC on a short one, whose bytes are cut off again)."""
    lines = _after_torn_tail(fd, size) + lines
    written = os.write(fd, lines)
    if written != len(lines):
        end = os.lseek(fd, 0, os.SEEK_CUR)
        # Another process may have appended since only where the filesystem has no flock:
        # then the torn tail is left for the next append to cut.
        if written > 0 and os.fstat(fd).st_size == end:
            os.ftruncate(fd, end - written)
        raise OSError(errno.ENOSPC, f"short write ({written} of {len(lines)} bytes)")


def _after_torn_tail(fd: int, size: int) -> bytes:
    """Cut the file's partial last line if it is one of ours; b"\\n" to write first if the
    file ends in a partial line that is not ours; b"" if it ends with a newline."""
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return b""
    start = max(0, size - MAX_LINE_BYTES)
    tail = os.pread(fd, size - start, start)
    newline = tail.rfind(b"\n")
    if newline < 0 and start > 0:
        return b"\n"  # longer than any line of ours
    if not tail[newline + 1 :].startswith(LINE_PREFIX):
        return b"\n"
    os.ftruncate(fd, start + newline + 1)
    return b""

"""The last lines of predictions.log, read without disturbing the writers.

Only the final ``max_bytes`` of the file are read (``os.pread``, never the whole file) and the
log's flock is never taken: the writers append whole lines with one ``write`` each, so a reader
can at worst see a last line that is still being written (or was torn by a killed writer). That
line, and the partial first line of the window, are skipped. The file is opened with
O_NOFOLLOW | O_NONBLOCK and must be a regular file: a symlink or a FIFO put in its place is
refused instead of followed or waited on.
"""

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Tail:
    """Parsed records, newest first, and how many complete lines in the window were not JSON
    objects."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    bytes_read: int = 0


def read_tail(path: Path, limit: int, max_bytes: int) -> Tail:
    """At most ``limit`` records from the last ``max_bytes`` bytes of ``path``, newest first.

    A missing file is an empty tail; a path that is not a regular file raises OSError.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return Tail()
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        window = _last_bytes(fd, info.st_size, max_bytes)
    finally:
        os.close(fd)
    return _parse(window, limit)


def _last_bytes(fd: int, size: int, max_bytes: int) -> bytes:
    """The complete lines among the last ``max_bytes`` bytes of the file.

    One byte before the window is read too: if it is a newline, the window starts on a line
    boundary; otherwise the window's first (partial) line is dropped.
    """
    offset = max(0, size - max_bytes - 1)
    data = _pread_all(fd, size - offset, offset)
    if offset > 0:
        first_newline = data.find(b"\n")
        data = data[first_newline + 1 :] if first_newline >= 0 else b""
    last_newline = data.rfind(b"\n")
    return data[: last_newline + 1]  # a line without its newline is still being written


def _pread_all(fd: int, length: int, offset: int) -> bytes:
    chunks = []
    while length > 0:
        chunk = os.pread(fd, length, offset)
        if not chunk:  # the file was cut meanwhile (a writer removed a torn tail)
            break
        chunks.append(chunk)
        length -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _parse(window: bytes, limit: int) -> Tail:
    records: list[dict[str, Any]] = []
    skipped = 0
    for line in reversed(window.splitlines()):
        if len(records) >= limit:
            break
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif line.strip():
            skipped += 1
    return Tail(records, skipped, len(window))

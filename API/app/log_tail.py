"""The last lines of predictions.log, read without disturbing its writers (only its end, never
its lock; a partial first or last line skipped). A symlink or FIFO in its place is refused."""

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class Tail:
    records: list[dict[str, Any]] = field(default_factory=list)  # newest first
    skipped: int = 0  # complete lines that are not JSON objects
    bytes_read: int = 0


def read_tail(path: Path, limit: int, max_bytes: int) -> Tail:
    """At most ``limit`` records from the complete lines among the last ``max_bytes`` bytes.
    A missing log is an empty tail; OSError if it is not a regular file."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return Tail()
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name} is not a regular file")
        # One byte before the window too: if it is a newline, the window starts on a line.
        start = max(0, info.st_size - max_bytes - 1)
        window = os.pread(fd, info.st_size - start, start)  # short only if cut meanwhile
    finally:
        os.close(fd)
    if start > 0:
        window = window.partition(b"\n")[2]  # the first line may be cut
    window = window[: window.rfind(b"\n") + 1]  # a line without its newline is unfinished

    records, skipped = [], 0
    for line in reversed(window.splitlines()):
        if len(records) == limit:
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

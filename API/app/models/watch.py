"""Tell whether a directory's entries may have changed since the last look, without a stat.

Linux queues an inotify event before the system call that created, wrote, renamed or deleted
a file returns, so draining the queue at the start of a request sees every change made before
that request, from any process or container on the same kernel (an overflowed queue is an
event too). Where inotify cannot see a change (a network filesystem written by another
machine, the path swapped to another directory) a full re-check every ``recheck_seconds``
bounds how stale it can get; without inotify every look is a full one.
"""

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

from inotify_simple import INotify, flags

_CHANGES = (
    flags.CREATE
    | flags.DELETE
    | flags.MODIFY
    | flags.ATTRIB
    | flags.CLOSE_WRITE
    | flags.MOVED_FROM
    | flags.MOVED_TO
    | flags.DELETE_SELF
    | flags.MOVE_SELF
    | flags.ONLYDIR
)
logger = logging.getLogger(__name__)
# After any of these the watch is gone and must be added again.
_WATCH_ENDED = flags.IGNORED | flags.DELETE_SELF | flags.MOVE_SELF | flags.UNMOUNT


class DirectoryWatch:
    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self.path = path
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._inotify: INotify | None = None
        self._unavailable = False  # no inotify here, or the watch was closed
        self._watch_descriptor: int | None = None
        self._watched: tuple[int, int] | None = None  # (device, inode) of the watched dir
        self._checked_at = float("-inf")

    def may_have_changed(self) -> bool:
        """True when the caller must look at the directory again; False only when inotify
        watched it since the previous True and reported nothing."""
        with self._lock:
            now = time.monotonic()
            changed = not self._watching() or self._drain() or self._recheck_due(now)
            if changed:
                self._checked_at = now
            return changed

    def close(self) -> None:
        with self._lock:
            if self._inotify is not None:
                self._inotify.close()
            self._inotify, self._watch_descriptor, self._watched = None, None, None
            self._unavailable = True  # a late request must not open a new descriptor

    def _watching(self) -> bool:
        """Whether a watch was in place before this call (if not, one is added for next time)."""
        if self._watched is not None:
            return True
        self._start_watch()
        return False

    def _start_watch(self) -> None:
        if self._unavailable:
            return
        try:
            if self._inotify is None:
                self._inotify = INotify(nonblocking=True)
            self._watch_descriptor = self._inotify.add_watch(self.path, _CHANGES)
            stat = os.stat(self.path)
        except (AttributeError, OSError) as error:  # no inotify, or no such directory (yet)
            if self._inotify is None:
                self._unavailable = True
                logger.warning(
                    "No inotify for %s (%s): every look at it will stat its files", self.path, error
                )
            return
        self._watched = (stat.st_dev, stat.st_ino)

    def _drain(self) -> bool:
        """Read every queued event; True if there was any."""
        assert self._inotify is not None
        events = self._inotify.read(timeout=0)
        ended = (e for e in events if e.wd == self._watch_descriptor and e.mask & _WATCH_ENDED)
        if any(ended):
            self._watch_descriptor, self._watched = None, None
        return bool(events)

    def _recheck_due(self, now: float) -> bool:
        if now - self._checked_at < self.recheck_seconds:
            return False
        try:
            stat = os.stat(self.path)
            same_directory = (stat.st_dev, stat.st_ino) == self._watched
        except OSError:
            same_directory = False
        if not same_directory:
            self._stop_watch()
        return True

    def _stop_watch(self) -> None:
        """Forget the watch (the path now names another directory, or none)."""
        assert self._inotify is not None and self._watch_descriptor is not None
        with contextlib.suppress(OSError):  # already removed by the kernel
            self._inotify.rm_watch(self._watch_descriptor)
        self._watch_descriptor, self._watched = None, None

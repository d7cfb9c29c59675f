"""GET /models' body, kept as encoded bytes while nothing it depends on has changed.

The body depends only on the model files (names and versions) and on the metrics report, so
each listing compares their signatures (the model files' come from the repository, which
stats them again only when its inotify watch saw a change; the report costs one stat) with
the last listing's and, if they are equal, answers with the same bytes. Any new, retrained,
replaced or deleted model file, or a new report, changes a signature and the body is rebuilt
on that very request.
"""

import threading
from typing import Any

from app.report import MetricsReport
from app.repository import ModelRepository

ListingState = tuple[Any, ...]


class ModelListing:
    def __init__(self, repository: ModelRepository, report: MetricsReport) -> None:
        self.repository = repository
        self.report = report
        self._lock = threading.Lock()
        self._state: ListingState | None = None
        self._body = b""

    def state(self) -> ListingState:
        """Taken before the body is built, so a change during the build is seen next time."""
        return (self.report.signature(), self.repository.signatures())

    def body_for(self, state: ListingState) -> bytes | None:
        """The body encoded for ``state``, or None if it must be built."""
        with self._lock:
            return self._body if state == self._state else None

    def remember(self, state: ListingState, body: bytes) -> None:
        with self._lock:
            self._state, self._body = state, body

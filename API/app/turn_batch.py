"""Adaptive batching with no timer: what one turn of the event loop submits is handled at once.

Under load one worker's loop starts several requests per turn (6-7 on average with 16
connections here). Each single prediction used to pay alone for an ONNX Runtime call and for
a log append (six system calls). Handled together they share both, and no request waits
for a timer: the batch is whatever was submitted before the loop came round again. On an
idle server a batch is one request.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
# Results for the items, in order; an exception in place of a result fails that item alone.
Handler = Callable[[list[Item]], Awaitable[list[Result | BaseException]]]


class TurnBatch(Generic[Item, Result]):
    def __init__(self, handle: Handler) -> None:
        self.handle = handle
        self._waiting: list[tuple[Item, asyncio.Future]] = []
        self._handlers: set[asyncio.Task[None]] = set()  # the loop only keeps weak references

    async def submit(self, item: Item) -> Result:
        """``item``'s result once its batch is handled (or its exception, raised)."""
        result = asyncio.get_running_loop().create_future()
        if not self._waiting:
            # The first item of its turn. The handler's first step runs after the requests
            # already started in this turn, which add their items meanwhile.
            handler = asyncio.create_task(self._handle_waiting())
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)
        self._waiting.append((item, result))
        return await result

    async def _handle_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            outcomes = await self.handle([item for item, _ in waiting])
        except Exception as error:  # the whole batch failed: each item with it
            outcomes = [error] * len(waiting)
        for (_, result), outcome in zip(waiting, outcomes, strict=True):
            if result.done():  # its request was cancelled meanwhile
                continue
            if isinstance(outcome, BaseException):
                result.set_exception(outcome)
            else:
                result.set_result(outcome)

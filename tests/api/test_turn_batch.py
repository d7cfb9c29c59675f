"""app.turn_batch.TurnBatch: what one turn of the event loop submits is handled in one call."""

import asyncio

from app.turn_batch import TurnBatch


class Recorder:
    """A handler that records its batches and doubles each item (fails on negative ones)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def handle(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        return [ValueError(item) if item < 0 else item * 2 for item in items]


def test_items_submitted_in_one_turn_are_handled_in_one_call_in_order():
    recorder = Recorder()
    batch = TurnBatch(recorder.handle)

    async def scenario() -> tuple[list, int]:
        first = await asyncio.gather(*(batch.submit(i) for i in range(5)))
        alone = await batch.submit(7)  # an idle loop: a batch of one
        return first, alone

    assert asyncio.run(scenario()) == ([0, 2, 4, 6, 8], 14)
    assert recorder.batches == [[0, 1, 2, 3, 4], [7]]


def test_an_item_that_fails_fails_alone():
    batch = TurnBatch(Recorder().handle)

    async def scenario() -> list:
        return await asyncio.gather(*(batch.submit(i) for i in (1, -1, 2)), return_exceptions=True)

    first, failed, last = asyncio.run(scenario())
    assert (first, last) == (2, 4)
    assert isinstance(failed, ValueError)


def test_a_handler_that_raises_fails_every_item_of_its_batch_and_not_the_next():
    calls = []

    async def broken_once(items: list[int]) -> list[int]:
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("broken")
        return items

    batch = TurnBatch(broken_once)

    async def scenario() -> tuple[list, int]:
        failed = await asyncio.gather(*(batch.submit(i) for i in range(3)), return_exceptions=True)
        return failed, await batch.submit(9)

    failed, later = asyncio.run(scenario())
    assert all(isinstance(error, RuntimeError) for error in failed)
    assert later == 9


def test_a_cancelled_submission_does_not_stop_the_others_of_its_batch():
    recorder = Recorder()
    batch = TurnBatch(recorder.handle)

    async def scenario() -> list:
        tasks = [asyncio.create_task(batch.submit(i)) for i in range(3)]
        await asyncio.sleep(0)  # all three are waiting for their batch
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(scenario())

    assert results[0] == 0 and results[2] == 4
    assert isinstance(results[1], asyncio.CancelledError)
    assert recorder.batches == [[0, 1, 2]]  # already handed over: it was handled with them


def test_the_loop_keeps_running_while_a_batch_waits():
    release = None

    async def slow(items: list[int]) -> list[int]:
        await release.wait()
        return items

    batch = TurnBatch(slow)

    async def scenario() -> tuple[int, int]:
        nonlocal release
        release = asyncio.Event()
        waiting = asyncio.ensure_future(batch.submit(1))
        ticks = 0
        while ticks < 10:
            ticks += 1
            await asyncio.sleep(0.001)
        assert not waiting.done()
        release.set()
        return await waiting, ticks

    assert asyncio.run(scenario()) == (1, 10)

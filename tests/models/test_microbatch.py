"""The micro-batcher's contract: own results, max delay, backpressure, isolation, drain."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from models.serving.microbatch import MicroBatcher


class Recorder:
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.waits: list[float] = []
        self.max_depth = 0

    def on_batch(self, size: int, queue_waits: Sequence[float], inference_s: float) -> None:
        self.sizes.append(size)
        self.waits += queue_waits

    def on_depth(self, depth: int) -> None:
        self.max_depth = max(self.max_depth, depth)


async def test_each_caller_gets_its_own_result_in_order() -> None:
    seen: list[list[int]] = []

    def fn(xs: list[int]) -> list[str]:
        seen.append(list(xs))
        return [f"r{x}" for x in xs]

    async with MicroBatcher(fn, max_batch_size=8, max_delay_ms=20) as b:
        results = await asyncio.gather(*(b.submit(i) for i in range(50)))
    assert results == [f"r{i}" for i in range(50)]
    assert [x for batch in seen for x in batch] == list(range(50))  # FIFO across batches
    assert max(len(batch) for batch in seen) == 8 and len(seen) < 50


async def test_a_lone_request_waits_max_delay_then_runs_alone() -> None:
    rec = Recorder()
    async with MicroBatcher(lambda xs: xs, max_batch_size=100, max_delay_ms=50, observer=rec) as b:
        assert await asyncio.wait_for(b.submit(1), timeout=10) == 1
    assert rec.sizes == [1]
    assert rec.waits[0] >= 0.049  # not dispatched before its deadline


async def test_a_full_batch_does_not_wait_for_the_delay() -> None:
    rec = Recorder()
    async with MicroBatcher(
        lambda xs: xs, max_batch_size=4, max_delay_ms=60_000, observer=rec
    ) as b:
        out = await asyncio.wait_for(asyncio.gather(*(b.submit(i) for i in range(4))), 30)
    assert out == [0, 1, 2, 3] and rec.sizes == [4]


async def test_submit_blocks_when_the_queue_is_full() -> None:
    release = threading.Event()
    rec = Recorder()

    def slow(xs: list[int]) -> list[int]:
        release.wait(10)
        return xs

    b = MicroBatcher(slow, max_batch_size=2, max_delay_ms=0, max_queue=3, observer=rec)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(20)]
    await asyncio.sleep(0.2)
    # One batch of 2 is on the thread, 3 wait in the queue, the rest wait to get in.
    assert b.depth <= 3 and rec.max_depth <= 3
    assert not any(t.done() for t in tasks)
    release.set()
    assert await asyncio.gather(*tasks) == list(range(20))
    await b.close()
    assert rec.max_depth <= 3


async def test_a_failing_request_fails_alone() -> None:
    def fn(xs: list[int]) -> list[int]:
        if any(x < 0 for x in xs):
            raise ValueError("negative")
        return [x * 10 for x in xs]

    async with MicroBatcher(fn, max_batch_size=16, max_delay_ms=20) as b:
        out = await asyncio.gather(*(b.submit(x) for x in (1, -1, 2, 3)), return_exceptions=True)
    assert out[0] == 10 and out[2] == 20 and out[3] == 30
    assert isinstance(out[1], ValueError)


async def test_a_wrong_result_count_is_an_error_not_a_mixup() -> None:
    async with MicroBatcher(lambda xs: xs[:1], max_batch_size=4, max_delay_ms=20) as b:
        out = await asyncio.gather(*(b.submit(x) for x in range(3)), return_exceptions=True)
    assert out == [0, 1, 2]  # retried one by one, where one result per item is right


async def test_close_drains_the_queue() -> None:
    rec = Recorder()
    b = MicroBatcher(lambda xs: xs, max_batch_size=100, max_delay_ms=60_000, observer=rec)
    tasks = [asyncio.create_task(b.submit(i)) for i in range(5)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(b.close(), 30)
    assert [t.result() for t in tasks] == list(range(5))
    with pytest.raises(RuntimeError):
        await b.submit(99)


async def test_next_batch_gathers_while_one_runs() -> None:
    started, release = threading.Event(), threading.Event()
    sizes: list[int] = []

    def fn(xs: list[int]) -> list[int]:
        sizes.append(len(xs))
        started.set()
        release.wait(10)
        return xs

    async with MicroBatcher(fn, max_batch_size=64, max_delay_ms=0) as b:
        first = asyncio.create_task(b.submit(0))
        await asyncio.to_thread(started.wait, 10)
        rest = [asyncio.create_task(b.submit(i)) for i in range(1, 11)]
        await asyncio.sleep(0.05)
        release.set()
        assert await first == 0 and await asyncio.gather(*rest) == list(range(1, 11))
    assert sizes == [1, 10]


async def test_submit_many_runs_at_once_in_order_and_fails_alone() -> None:
    """A whole batch of requests: dispatched without waiting out the delay, in
    batches of the maximum size, each result (or its own error) in order."""
    seen: list[list[int]] = []

    def fn(xs: list[int]) -> list[int]:
        seen.append(list(xs))
        if 13 in xs:
            raise ValueError("bad request")
        return [x * 2 for x in xs]

    async with MicroBatcher(fn, max_batch_size=8, max_delay_ms=10_000, max_queue=4) as b:
        loop = asyncio.get_running_loop()
        start = loop.time()
        results = await b.submit_many(list(range(30)))
        assert loop.time() - start < 5  # far below the 10 s delay
    assert [r for i, r in enumerate(results) if i != 13] == [2 * i for i in range(30) if i != 13]
    assert isinstance(results[13], ValueError)
    assert max(len(batch) for batch in seen) <= 8

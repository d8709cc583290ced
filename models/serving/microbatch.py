"""A dynamic micro-batcher: many coroutines submit one request each, a thread runs batches.

The idea of Triton's dynamic batcher and Ray Serve's ``@serve.batch``, inside the
worker's own event loop:

- a batch is dispatched when ``max_batch_size`` requests wait, or ``max_delay_ms``
  after its oldest request arrived, whichever comes first;
- at most ``max_queue`` requests wait; ``submit`` blocks beyond that (backpressure);
- the batch function runs on one dedicated thread, so the loop keeps consuming, and
  while one batch runs the next one is being gathered (``thread_init`` runs first
  on that thread, e.g. to set its torch thread count); given ``afn``, a coroutine
  function that does not block the loop (a model in another process), batches run
  through it on the loop instead, with no thread hand-off;
- when a batch raises, its requests are retried one by one, so a bad request fails
  alone;
- ``close`` dispatches everything still queued (no delay) and waits for it;
- ``submit_many`` queues a caller's whole batch and dispatches it at once, in
  batches of up to ``max_batch_size`` (that caller sends nothing more meanwhile).

>>> import asyncio
>>> async def main():
...     async with MicroBatcher(lambda xs: [x * 2 for x in xs], max_batch_size=4) as b:
...         return await asyncio.gather(*(b.submit(i) for i in range(6)))
>>> asyncio.run(main())
[0, 2, 4, 6, 8, 10]
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchObserver(Protocol):
    """Receives one call per batch (e.g. to export metrics); must be cheap and thread-safe."""

    def on_batch(self, size: int, queue_waits: Sequence[float], inference_s: float) -> None: ...

    def on_depth(self, depth: int) -> None: ...


class _NoObserver:
    def on_batch(self, size: int, queue_waits: Sequence[float], inference_s: float) -> None:
        pass

    def on_depth(self, depth: int) -> None:
        pass


@dataclass(slots=True)
class _Request(Generic[T, R]):
    item: T
    future: asyncio.Future[R]
    enqueued: float = field(default_factory=time.perf_counter)


class _Failed:
    """A per-request exception carried back from the inference thread."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class MicroBatcher(Generic[T, R]):
    """Batches ``submit(item)`` calls into ``fn(list_of_items) -> list_of_results``."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        afn: Callable[[list[T]], Awaitable[Sequence[R]]] | None = None,
        max_batch_size: int = 64,
        max_delay_ms: float = 5.0,
        max_queue: int = 1024,
        observer: BatchObserver | None = None,
        thread_init: Callable[[], None] | None = None,
        name: str = "microbatch",
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_delay_ms < 0:
            raise ValueError("need max_batch_size >= 1, max_queue >= 1 and max_delay_ms >= 0")
        self.fn = fn
        self.afn = afn
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000.0
        self.max_queue = max_queue
        self.observer: BatchObserver = observer or _NoObserver()
        self.thread_init = thread_init
        self.name = name
        self._pending: deque[_Request[T, R]] = deque()
        self._space: asyncio.Semaphore | None = None
        self._arrived: asyncio.Event | None = None
        self._device_free: asyncio.Semaphore | None = None
        self._gatherer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._flushing = 0  # callers of submit_many waiting: run what is pending now

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        if self._gatherer is not None:
            return
        self._space = asyncio.Semaphore(self.max_queue)
        self._arrived = asyncio.Event()
        self._device_free = asyncio.Semaphore(1)  # one batch on the device at a time
        self._executor = ThreadPoolExecutor(
            1, thread_name_prefix=self.name, initializer=self.thread_init
        )
        self._gatherer = asyncio.create_task(self._gather(), name=f"{self.name}-gather")

    async def close(self) -> None:
        """Run every queued request (no more waiting for fuller batches), then stop."""
        if self._gatherer is None or self._closing:
            return
        self._closing = True
        assert self._arrived is not None
        self._arrived.set()
        await self._gatherer
        while self._running:
            await asyncio.gather(*self._running)
        assert self._executor is not None
        self._executor.shutdown(wait=True)

    async def __aenter__(self) -> MicroBatcher[T, R]:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def depth(self) -> int:
        """Requests waiting to be put into a batch."""
        return len(self._pending)

    # -- submit -------------------------------------------------------------------
    async def submit(self, item: T) -> R:
        """Queue ``item`` (waiting while the queue is full) and return its own result."""
        if self._gatherer is None:
            await self.start()
        if self._closing:
            raise RuntimeError(f"{self.name} is closed")
        assert self._space is not None and self._arrived is not None
        await self._space.acquire()
        request: _Request[T, R] = _Request(item, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        self.observer.on_depth(len(self._pending))
        self._arrived.set()
        return await request.future

    async def submit_many(self, items: Sequence[T]) -> list[R | BaseException]:
        """Queue every item and return each one's result (or the exception its batch
        raised), in order. The batcher does not wait for fuller batches meanwhile:
        the caller sends nothing more until these are answered."""
        if self._gatherer is None:
            await self.start()
        if self._closing:
            raise RuntimeError(f"{self.name} is closed")
        assert self._space is not None and self._arrived is not None
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[R]] = []
        self._flushing += 1
        try:
            for item in items:
                await self._space.acquire()  # a full queue: the batches run meanwhile
                request: _Request[T, R] = _Request(item, loop.create_future())
                self._pending.append(request)
                futures.append(request.future)
                self._arrived.set()
            self.observer.on_depth(len(self._pending))
            return list(await asyncio.gather(*futures, return_exceptions=True))
        finally:
            self._flushing -= 1

    async def dispatched(self, max_turns: int = 16) -> None:
        """Yield to the event loop until every queued request is in a batch handed to
        the inference thread, or cannot be yet (a batch runs): the caller's next
        work then overlaps the inference instead of delaying its start."""
        await asyncio.sleep(0)  # submitters scheduled before this call queue theirs
        for _ in range(max_turns):
            free = self._device_free
            if not self._pending or free is None or free.locked():
                break
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # the new batch's task reaches the executor

    # -- gather and run -----------------------------------------------------------
    async def _gather(self) -> None:
        assert self._arrived is not None and self._device_free is not None
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._arrived.clear()
                await self._arrived.wait()
            await self._wait_for_fill()
            # While the previous batch still runs, requests keep piling up and are
            # taken below: the batch grows instead of waiting empty-handed.
            await self._device_free.acquire()
            batch = self._take()
            task = asyncio.create_task(self._run(batch), name=f"{self.name}-batch")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _wait_for_fill(self) -> None:
        assert self._arrived is not None
        deadline = self._pending[0].enqueued + self.max_delay
        while len(self._pending) < self.max_batch_size and not (self._closing or self._flushing):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrived.wait()
            except TimeoutError:
                return

    def _take(self) -> list[_Request[T, R]]:
        assert self._space is not None
        batch: list[_Request[T, R]] = []
        while self._pending and len(batch) < self.max_batch_size:
            request = self._pending.popleft()
            self._space.release()
            if not request.future.done():  # skip callers that gave up
                batch.append(request)
        self.observer.on_depth(len(self._pending))
        return batch

    async def _run(self, batch: list[_Request[T, R]]) -> None:
        assert self._device_free is not None and self._executor is not None
        try:
            if not batch:
                return
            started = time.perf_counter()
            waits = [started - r.enqueued for r in batch]
            items = [r.item for r in batch]
            loop = asyncio.get_running_loop()
            try:
                if self.afn is not None:
                    results = await self._acall(items)
                else:
                    results = await loop.run_in_executor(self._executor, self._call, items)
            except Exception as exc:  # the executor itself failed: every caller hears of it
                results = [_Failed(exc)] * len(batch)
            self.observer.on_batch(len(batch), waits, time.perf_counter() - started)
        finally:
            self._device_free.release()
        for request, result in zip(batch, results, strict=True):
            if request.future.done():
                continue
            if isinstance(result, _Failed):
                request.future.set_exception(result.exc)
            else:
                request.future.set_result(result)

    def _call(self, items: list[T]) -> list[R | _Failed]:
        """On the inference thread: the whole batch, or each item alone if the batch fails."""
        try:
            return _checked(self.fn(items), items)
        except Exception as exc:
            if len(items) == 1:
                return [_Failed(exc)]
        out: list[R | _Failed] = []
        for item in items:
            out += self._call([item])
        return out

    async def _acall(self, items: list[T]) -> list[R | _Failed]:
        """:meth:`_call` through ``afn``, on the loop."""
        assert self.afn is not None
        try:
            return _checked(await self.afn(items), items)
        except Exception as exc:
            if len(items) == 1:
                return [_Failed(exc)]
        out: list[R | _Failed] = []
        for item in items:
            out += await self._acall([item])
        return out


def _checked(results: Sequence[R], items: list[T]) -> list[R | _Failed]:
    out: list[R | _Failed] = list(results)
    if len(out) != len(items):
        raise RuntimeError(f"{len(out)} results for {len(items)} requests")
    return out

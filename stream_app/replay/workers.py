"""Replay work split over forked worker processes, the way a deployment splits the
input partitions over its workers.

A user's events all go to one input partition (the producer keys by user), and
``workers`` processes take the partitions round-robin (:func:`owner`). Each
worker holds its own state and models and learns from its share only, as each
worker of a deployment does (see :mod:`stream_app.state.markov_store`). With one
worker everything runs in this process.

>>> [owner(u, partitions=4, workers=2) for u in ("u1", "u2", "u3")] == [
...     owner(u, partitions=4, workers=2) for u in ("u1", "u2", "u3")]
True
>>> def prepare(worker):
...     return lambda tick: worker * 10
>>> run_split(prepare, workers=2, total=0, progress=False)[0]
[0, 10]
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from tqdm import tqdm

from stream_app.routing import partition_for

T = TypeVar("T")
Tick = Callable[[int], None]  # how many events this worker has done so far
#: ``prepare(worker)`` does the untimed set-up and returns the timed work.
Prepare = Callable[[int], Callable[[Tick], T]]


def owner(user: str, partitions: int, workers: int) -> int:
    """The worker that replays ``user``: the one holding the user's input partition."""
    return partition_for(user.encode(), partitions) % workers


def run_split(
    prepare: Prepare[T], workers: int, total: int, progress: bool = True, desc: str = "replay"
) -> tuple[list[T], float]:
    """Each worker's result, in worker order, and the wall-clock seconds of the
    timed work: from when every worker is set up until the last result is in."""
    with tqdm(total=total, desc=desc, unit="ev", disable=not progress) as bar:
        if workers == 1:
            work = prepare(0)
            start = time.perf_counter()
            result = work(lambda n: bar.update(n - bar.n))
            return [result], time.perf_counter() - start
        return _forked(prepare, workers, bar)


def _forked(prepare: Prepare[T], workers: int, bar: tqdm) -> tuple[list[T], float]:
    # fork: the workers share the log already read (copy on write) and need
    # nothing pickled but their results.
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Barrier(workers + 1)
    done = [ctx.Value("q", 0, lock=False) for _ in range(workers)]
    pipes = [ctx.Pipe(duplex=False) for _ in range(workers)]
    procs = [
        ctx.Process(target=_child, args=(prepare, w, ready, done[w], pipes[w][1]), daemon=True)
        for w in range(workers)
    ]
    results: list[Any] = [None] * workers
    aborted = False
    pending = {pipes[w][0]: w for w in range(workers)}
    for p in procs:
        p.start()
    try:
        # A broken barrier: a worker failed to set up, and its error is in its pipe.
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.wait()
        start = time.perf_counter()
        while pending:
            for conn in wait(list(pending), timeout=0.25):
                assert isinstance(conn, Connection)
                w = pending.pop(conn)
                try:
                    kind, value = conn.recv()
                except EOFError:
                    kind, value = "error", f"exit code {procs[w].exitcode}"
                if kind == "error":
                    raise RuntimeError(f"replay worker {w} failed: {value}")
                if kind == "aborted":
                    # Another worker failed to set up; its own error is the one to
                    # report, and it is still in its pipe.
                    aborted = True
                    continue
                results[w] = value
            bar.update(sum(d.value for d in done) - bar.n)
        # Not expected: the worker that broke the barrier reports its error, or its
        # pipe closes (its exit code). Never return an aborted worker's missing result.
        if aborted:
            raise RuntimeError("replay workers stopped: a worker failed to set up")
        seconds = time.perf_counter() - start
    finally:
        for p in procs:
            if p.is_alive() and pending:
                p.terminate()
            p.join()
    return results, seconds


def _child(prepare: Prepare[Any], worker: int, ready: Any, done: Any, conn: Connection) -> None:
    # One CPU each: measured 12% faster than letting the workers move (REES46, 2 CPUs).
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[worker % len(cpus)]})
    try:
        work = prepare(worker)
    except BaseException:
        ready.abort()
        conn.send(("error", traceback.format_exc()))
        return
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        conn.send(("aborted", None))
        return
    try:
        result = work(lambda n: setattr(done, "value", n))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ok", result))

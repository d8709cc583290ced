"""The main job in one command: broker, worker, events in, recommendations out.

Ctrl-C stops the producer, the worker and the broker, in that order, saying so
and how long each took (a few seconds in all). The worker and the broker run in
process groups of their own, so a terminal's Ctrl-C reaches only the demo: a
broker that stopped at the same time as the worker would leave the worker's
final commit waiting for it. They also die with this process if it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
import time
from pathlib import Path

from stream_app.harness import Stack, create_topics
from stream_app.kafka.consumer import recommendations, summary
from stream_app.kafka.producer import produce
from stream_app.settings import Settings

log = logging.getLogger(__name__)

# The shared datasets sit beside the repository checkout.
DEFAULT_DATASETS = (
    Path("../shared/datasets/amazon-beauty/sequences.txt"),
    Path(__file__).resolve().parents[2] / "shared/datasets/amazon-beauty/sequences.txt",
)


async def _run(settings: Settings, dataset: Path | None, rate: float, limit: int | None) -> None:
    # Topics are already declared by run_demo, before the worker starts.
    printed = 0

    async def show() -> None:
        nonlocal printed
        async for rec in recommendations(settings, from_beginning=True):
            print(summary(rec), flush=True)
            printed += 1

    shower = asyncio.create_task(show())
    try:
        sent = await produce(settings, dataset, rate, limit)
        print(f"-- producer done: {sent} events sent; Ctrl-C to stop", flush=True)
        await shower
    finally:
        shower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await shower


def run_demo(settings: Settings, dataset: Path | None, rate: float, limit: int | None) -> int:
    if dataset is None:
        dataset = next((p for p in DEFAULT_DATASETS if p.exists()), None)
    print(
        f"-- streamrec demo: events from {dataset or 'a generated stream'} at {rate}/s", flush=True
    )
    # Ctrl-C must stop the demo even when started in the background by a shell,
    # which starts asynchronous commands with SIGINT ignored (and Python keeps that).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if settings.log_level == "info":
        # The demo's own clients' progress lines (subscriptions, metadata) would bury
        # the recommendations; their warnings and errors still show.
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="streamrec-demo-"))
    # The worker takes everything but the cluster and its state directory from this
    # process's environment, as the settings did.
    stack = Stack({}, workdir)
    try:
        if settings.kafka_bootstrap is None:
            print(
                f"-- starting embedded Apache Kafka {settings.kafka_version} on "
                f"{settings.bootstrap}",
                flush=True,
            )
        stack.use_broker(settings)
        create_topics(settings)
        worker = stack.worker("worker", ports=False, data_dir=workdir / "state")
        print(f"-- starting worker (log: {worker.log_path})", flush=True)
        worker.start()
        asyncio.run(_run(settings, dataset, rate, limit))
    except KeyboardInterrupt:
        print("\n-- stopping: producer and reader stopped", flush=True)
    finally:
        stop(stack)
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def stop(stack: Stack) -> None:
    """Stop the worker, then the broker, printing each step."""
    started = time.monotonic()
    for w in stack.workers:
        if w.proc is None:
            continue
        print(
            f"-- stopping the worker (pid {w.proc.pid}): it finishes and commits what it holds",
            flush=True,
        )
        t = time.monotonic()
        code = w.stop()
        print(f"-- worker stopped in {time.monotonic() - t:.1f} s (exit status {code})", flush=True)
    stack.workers.clear()
    if stack.broker is not None:
        print("-- stopping Kafka", flush=True)
        t = time.monotonic()
        stack.stop()
        print(f"-- Kafka stopped in {time.monotonic() - t:.1f} s", flush=True)
    print(f"-- all stopped in {time.monotonic() - started:.1f} s", flush=True)

"""The main job in one command: broker, worker, events in, recommendations out.

Ctrl-C stops the producer, the worker and the broker, in that order; the worker
and broker also die with this process if it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import tempfile
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
        print("\n-- stopping", flush=True)
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0

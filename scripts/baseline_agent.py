"""The reference point for throughput: a bare Faust agent doing one table update
and one send per event, with the same topics, partitions and RocksDB store as
streamrec's worker. Run by ``scripts/bench_pipeline.py``; not part of streamrec.
"""

from __future__ import annotations

import sys

import faust

from stream_app.app import faust_settings, rocksdb_options
from stream_app.harness import create_topics
from stream_app.settings import Settings


def create_app(settings: Settings) -> faust.App:
    app = faust.App(settings.app_id, **faust_settings(settings))
    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    source = app.topic(settings.input_topic, partitions=settings.partitions, **raw)
    sink = app.topic(settings.output_topic, partitions=settings.partitions, **raw)
    counts = app.Table(
        "counts",
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        options=rocksdb_options(settings),  # the same bounded RocksDB memory as streamrec's
    )

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key = event.key or b""
            n = int(counts.get(key, b"0")) + 1
            counts[key] = str(n).encode()
            await sink.send(key=key, value=event.value)

    return app


if __name__ == "__main__":
    settings = Settings()
    create_topics(settings)
    (settings.data_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(create_app(settings), loglevel="warn", quiet=True)
    worker.spinner = None
    sys.exit(worker.execute_from_commandline())

"""Run streamrec end to end on one machine: a broker, fresh topics, worker processes.

One harness for the broker-backed tests, the benchmarks, the chaos and soak
harnesses and ``streamrec demo``:

- :func:`free_port`: a TCP port nobody listens on now;
- :func:`isolated_env`: ``STREAMREC_*`` variables naming a fresh app id and fresh
  topics, so runs sharing a broker never see each other's data. Variable names
  come from the :class:`Settings` fields, never written out by hand;
- :func:`start_broker` / :func:`broker_running`: the embedded broker, unless the
  settings name a running cluster (``STREAMREC_KAFKA_BOOTSTRAP``);
- :class:`Stack`: one run's workers (and the broker, where it started one), each
  with its own state directory, log and ports; stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from aiokafka.admin import NewTopic

from stream_app.kafka.admin import ensure_topics
from stream_app.kafka.broker import EmbeddedBroker
from stream_app.processes import WorkerProcess
from stream_app.settings import Settings

ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))
# The topics of a run: every ``*_topic`` setting (input, output, DLQ, control, audit).
TOPIC_FIELDS = tuple(name for name in Settings.model_fields if name.endswith("_topic"))
ISOLATED_FIELDS = ("app_id", *TOPIC_FIELDS)


def free_port() -> int:
    """A port free now on 127.0.0.1 (the OS picks it; another process could take it later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_name(field: str) -> str:
    """The environment variable that sets the :class:`Settings` field ``field``."""
    if field not in Settings.model_fields:
        raise KeyError(f"Settings has no field {field!r}")
    return f"{ENV_PREFIX}{field.upper()}"


def settings_env(**fields: object) -> dict[str, str]:
    """Environment variables setting these :class:`Settings` fields (``partitions=4``)."""
    return {
        env_name(k): ("true" if v else "false") if isinstance(v, bool) else str(v)
        for k, v in fields.items()
    }


def env_of(settings: Settings, *fields: str) -> dict[str, str]:
    """Environment variables that give a child process these fields of ``settings``."""
    return settings_env(**{f: getattr(settings, f) for f in fields})


def isolated_fields(prefix: str) -> dict[str, str]:
    """A fresh app id ``<prefix>-<random>`` and topics named after it: each default
    topic name with the default app id replaced (``streamrec.events`` ->
    ``<app id>.events``)."""
    app_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    default_app = str(Settings.model_fields["app_id"].default)
    names = {"app_id": app_id}
    for field in TOPIC_FIELDS:
        default = str(Settings.model_fields[field].default)
        names[field] = app_id + default.removeprefix(default_app)
    return names


def isolated_env(prefix: str, **overrides: object) -> dict[str, str]:
    """``STREAMREC_*`` variables of a run on fresh topics; ``overrides`` are further
    :class:`Settings` fields (``kafka_bootstrap=...``, ``log_level="warn"``)."""
    return settings_env(**{**isolated_fields(prefix), **overrides})


def local_broker_settings(**fields: object) -> Settings:
    """Settings of an embedded broker on free ports (client and controller)."""
    ports = {"broker_port": free_port(), "broker_controller_port": free_port()}
    return Settings(**{**ports, **fields})  # type: ignore[arg-type]


def broker_settings(default_port: int) -> Settings:
    """Settings of a harness whose embedded broker listens on ``default_port``, unless
    ``STREAMREC_BROKER_PORT`` names another (kept off Kafka's usual 9092)."""
    port = os.environ.get(env_name("broker_port"), str(default_port))
    return Settings(broker_port=int(port))


def create_topics(settings: Settings, extra: Sequence[NewTopic] = ()) -> None:
    """Create the topics of ``settings`` with their partition counts, before any send."""
    asyncio.run(ensure_topics(settings, extra))


def start_broker(base: Settings, data_dir: Path | None = None) -> EmbeddedBroker | None:
    """The embedded broker of ``base``, started; None where ``base.kafka_bootstrap``
    names a running cluster, which is then used as it is."""
    if base.kafka_bootstrap is not None:
        return None
    return EmbeddedBroker(base, data_dir=data_dir).start()


@contextlib.contextmanager
def broker_running(base: Settings, data_dir: Path | None = None) -> Iterator[str]:
    """The bootstrap of ``base``'s cluster, with the embedded broker up for the block
    when ``base`` names none."""
    broker = start_broker(base, data_dir)
    try:
        yield base.bootstrap
    finally:
        if broker is not None:
            broker.stop()


class Stack:
    """The worker processes of one run (``env_vars``: its ``STREAMREC_*`` variables,
    on top of this process's environment), and the broker where :meth:`use_broker`
    started one. Files go under ``workdir``. :meth:`stop` (or leaving the ``with``
    block) stops every worker started here, then that broker."""

    def __init__(
        self,
        env: Mapping[str, str],
        workdir: Path,
        cwd: Path | None = None,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.env_vars = dict(env)
        self.workdir = workdir
        self.cwd = cwd
        self.argv = argv
        self.broker: EmbeddedBroker | None = None
        self.workers: list[WorkerProcess] = []
        self.settings = Settings.from_env(self.env_vars)

    def use_broker(self, base: Settings, data_dir: Path | None = None) -> Stack:
        """Run on ``base``'s cluster, starting the embedded broker when it names none."""
        self.broker = start_broker(base, data_dir)
        self.env_vars[env_name("kafka_bootstrap")] = base.bootstrap
        self.settings = Settings.from_env(self.env_vars)
        return self

    def create_topics(self, extra: Sequence[NewTopic] = ()) -> None:
        create_topics(self.settings, extra)

    def worker(self, n: int | str = 0, ports: bool = True, **fields: object) -> WorkerProcess:
        """A new worker process, not started: state in ``workdir/<name>``, log in
        ``workdir/<name>.log`` (``name``: ``worker<n>``, or ``n`` itself when a
        string); with ``ports``, its own web and metrics ports, so several can run
        side by side. ``fields``: settings of this worker only."""
        name = n if isinstance(n, str) else f"worker{n}"
        own: dict[str, object] = {"data_dir": self.workdir / name}
        if ports:
            own.update(web_port=free_port(), metrics_port=free_port())
        env = {**os.environ, **self.env_vars, **settings_env(**{**own, **fields})}
        log_path = self.workdir / f"{name}.log"
        if self.argv is None:
            w = WorkerProcess(env, log_path, cwd=self.cwd)
        else:
            w = WorkerProcess(env, log_path, cwd=self.cwd, argv=self.argv)
        self.workers.append(w)
        return w

    def start_workers(
        self, n: int = 1, wait: bool = True, timeout: float = 120.0
    ) -> list[WorkerProcess]:
        """Start ``n`` new workers (``w<i>``, numbered on from those started before),
        all in one consumer group; with ``wait``, until each has its partitions."""
        first = len(self.workers)
        started = [self.worker(f"w{first + i}").start() for i in range(n)]
        if wait:
            for w in started:
                w.wait_ready(timeout)
        return started

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after 30 s), then our broker."""
        for w in self.workers:
            w.stop()
        broker, self.broker = self.broker, None
        if broker is not None:
            broker.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

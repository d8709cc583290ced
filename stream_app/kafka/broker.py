"""An embedded single-node Apache Kafka (KRaft) on the machine's JDK.

The first run resolves the broker jars from Maven Central with Maven into
``<home>/kafka-<version>/libs`` and reuses them afterwards. Each start formats a
fresh storage directory unless one is given. ``secure=True`` adds SASL_SSL,
SCRAM users and ACLs (:mod:`stream_app.kafka.secure_broker`).

>>> props = broker_properties(9092, 9093, "127.0.0.1", Path("/tmp/x"))
>>> props["process.roles"], props["group.initial.rebalance.delay.ms"]
('broker,controller', '0')
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from stream_app.kafka import secure_broker
from stream_app.kafka.security import client_security
from stream_app.processes import die_with_parent
from stream_app.settings import Settings

log = logging.getLogger(__name__)

SLF4J_VERSION = "1.7.36"  # the slf4j-api that kafka_2.13 4.x itself resolves to
MESSAGE_MAX_BYTES = 16 * 1024 * 1024  # lets huge (invalid) events reach the DLQ path

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>streamrec</groupId><artifactId>embedded-kafka</artifactId>
  <version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId>
      <version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""


class BrokerError(RuntimeError):
    """The embedded broker could not be set up or started."""


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "no Java runtime found: install one (Debian: apt-get install -y default-jre-headless)"
        )
    return java


def resolve_jars(home: Path, kafka_version: str) -> Path:
    """Return the directory of broker jars, resolving them with Maven on first use."""
    root = home / f"kafka-{kafka_version}"
    libs = root / "libs"
    done = root / ".complete"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed once to fetch the broker jars: apt-get install maven"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / "pom.xml").write_text(_POM.format(kafka=kafka_version, slf4j=SLF4J_VERSION))
    log.info("resolving Apache Kafka %s jars from Maven Central into %s", kafka_version, libs)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(root / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BrokerError(
            f"mvn failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )
    done.touch()
    return libs


def broker_properties(port: int, controller_port: int, host: str, log_dir: Path) -> dict[str, str]:
    return {
        "node.id": "1",
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "log.dirs": str(log_dir),
        "num.partitions": "4",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "message.max.bytes": str(MESSAGE_MAX_BYTES),
        "replica.fetch.max.bytes": str(MESSAGE_MAX_BYTES),
        "log.cleaner.backoff.ms": "1000",
        "auto.create.topics.enable": "true",
    }


def broker_command(java: str, cp: str, cfg: Path, settings: Settings) -> list[str]:
    """The broker's JVM command line: the heap, then ``broker_jvm_options`` (split
    like a shell would), which may override what comes before them.

    >>> s = Settings(broker_jvm_options="-XX:TieredStopAtLevel=1 '-Dx=a b'")
    >>> broker_command("java", "jars/*", Path("server.properties"), s)[3:6]
    ['-XX:+UseG1GC', '-XX:TieredStopAtLevel=1', '-Dx=a b']
    """
    heap = settings.broker_heap
    return [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        *shlex.split(settings.broker_jvm_options),
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-cp",
        cp,
        "kafka.Kafka",
        str(cfg),
    ]


def format_storage(java: str, cp: str, cfg: Path, scram: list[str]) -> None:
    """Format a new KRaft storage directory (the one ``cfg`` names) under a random
    cluster id."""
    cluster_id = subprocess.run(
        [java, "-cp", cp, "kafka.tools.StorageTool", "random-uuid"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    fmt = subprocess.run(
        [
            java,
            "-cp",
            cp,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(cfg),
            *scram,  # SCRAM users are part of the initial KRaft metadata
        ],
        capture_output=True,
        text=True,
    )
    if fmt.returncode != 0:
        raise BrokerError(f"formatting KRaft storage failed:\n{fmt.stdout}{fmt.stderr}")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


async def wait_until_ready(bootstrap: str, timeout: float = 60.0, **security: Any) -> None:
    """Wait until the cluster answers a metadata request (``security``: aiokafka's
    security options, for a secured broker)."""
    from aiokafka import AIOKafkaClient

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **security)
        try:
            await client.bootstrap()
            if client.cluster.brokers():
                return
        except Exception as exc:  # not up yet
            last = exc
        finally:
            await client.close()
        await asyncio.sleep(0.25)
    raise BrokerError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s: {last}")


class EmbeddedBroker:
    """Start, wait for and stop one local Kafka process.

    Usable as a context manager; ``stop()`` is idempotent. With ``secure`` the
    client listener is SASL_SSL (SCRAM-SHA-512) and ACLs allow the worker,
    producer and reader principals what they need; see ``secure_broker``.
    """

    def __init__(
        self, settings: Settings, data_dir: Path | None = None, secure: bool = False
    ) -> None:
        self.settings = settings
        self.secure = secure
        self._given_dir = data_dir
        self.dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.settings.broker_host}:{self.settings.broker_port}"

    @property
    def secrets_dir(self) -> Path:
        return secure_broker.secrets_dir(self.settings)

    def client_settings(self, user: str = secure_broker.ADMIN) -> Settings:
        """Settings that connect to this broker (as ``user`` when it is secure)."""
        local = self.settings.model_copy(update={"kafka_bootstrap": self.bootstrap})
        return secure_broker.as_user(local, user) if self.secure else local

    def start(self, timeout: float = 90.0) -> EmbeddedBroker:
        s = self.settings
        if port_open(s.broker_host, s.broker_port):
            raise BrokerError(
                f"port {s.broker_port} is already in use; stop that process or set "
                "STREAMREC_BROKER_PORT (or point STREAMREC_KAFKA_BOOTSTRAP at it)"
            )
        java = java_binary()
        cp = f"{resolve_jars(s.home, s.kafka_version)}/*"
        self.dir = self._given_dir or Path(tempfile.mkdtemp(prefix="streamrec-kafka-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        log_dir = self.dir / "data"
        cfg, scram = self._write_config(log_dir)
        if not (log_dir / "meta.properties").exists():
            format_storage(java, cp, cfg, scram)
        self.proc = self._launch(java, cp, cfg)
        log.info(
            "embedded Kafka %s starting on %s%s (pid %d, dir %s)",
            s.kafka_version,
            "SASL_SSL://" if self.secure else "",
            self.bootstrap,
            self.proc.pid,
            self.dir,
        )
        try:
            asyncio.run(self._wait(timeout))
        except BaseException:
            self.stop()
            raise
        return self

    def _write_config(self, log_dir: Path) -> tuple[Path, list[str]]:
        """``server.properties`` in the broker's directory, and the ``--add-scram``
        arguments of its users (none unless secure)."""
        assert self.dir is not None
        s = self.settings
        props = broker_properties(s.broker_port, s.controller_port, s.broker_host, log_dir)
        scram: list[str] = []
        if self.secure:
            props.update(self._secure_setup())
            for user in secure_broker.USERS:
                password = secure_broker.ensure_password(self.secrets_dir, user)
                scram += ["--add-scram", secure_broker.scram_argument(user, password)]
        cfg = self.dir / "server.properties"
        cfg.touch()
        cfg.chmod(0o600)  # a secure broker's file holds its own password
        cfg.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return cfg, scram

    def _launch(self, java: str, cp: str, cfg: Path) -> subprocess.Popen[bytes]:
        """The broker's JVM, logging to ``broker.log`` in its directory."""
        assert self.dir is not None
        logfile = open(self.dir / "broker.log", "ab")  # noqa: SIM115 - lives as long as the JVM
        proc = subprocess.Popen(
            broker_command(java, cp, cfg, self.settings),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            # Its own process group: a terminal's Ctrl-C reaches only the parent,
            # which stops its children in order (a broker gone first stalls the rest).
            start_new_session=True,
        )
        logfile.close()
        return proc

    async def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(self.settings.broker_host, self.settings.broker_port):
            if self.proc is not None and self.proc.poll() is not None:
                tail = (self.dir / "broker.log").read_text(errors="replace")[-3000:]  # type: ignore[operator]
                raise BrokerError(f"Kafka exited with {self.proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise BrokerError(f"Kafka did not listen within {timeout:.0f}s")
            await asyncio.sleep(0.2)
        admin = self.client_settings()
        security = client_security(admin) if self.secure else {}
        await wait_until_ready(self.bootstrap, max(5.0, deadline - time.monotonic()), **security)
        if self.secure:
            await secure_broker.create_acls(admin, secure_broker.acl_bindings(self.settings))

    def _secure_setup(self) -> dict[str, str]:
        """Certificates and the admin password, then the secure property overrides."""
        s = self.settings
        secure_broker.ensure_certificates(self.secrets_dir, [s.broker_host])
        admin_password = secure_broker.ensure_password(self.secrets_dir, secure_broker.ADMIN)
        return secure_broker.secure_properties(
            s.broker_host, s.broker_port, s.controller_port, self.secrets_dir, admin_password
        )

    def stop(self, timeout: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("Kafka did not stop in %.0fs; killing it", timeout)
                proc.kill()
                proc.wait()
        if self.dir is not None and self._given_dir is None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

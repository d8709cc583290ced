"""One typed settings object, read from ``STREAMREC_*`` environment variables.

Every knob streamrec has lives here; the README lists them all.

>>> s = Settings(partitions=2)
>>> s.input_topic, s.partitions
('streamrec.events', 2)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024


def _default_home() -> Path:
    return Path.home() / ".cache" / "streamrec"


class Settings(BaseSettings):
    """streamrec configuration. Each field ``x`` is read from ``STREAMREC_X``."""

    model_config = SettingsConfigDict(env_prefix="STREAMREC_", frozen=True, extra="ignore")

    # --- Kafka ---------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        None, description="host:port list of a Kafka cluster; unset = the embedded broker"
    )
    broker_host: str = Field("127.0.0.1", description="embedded broker bind address")
    broker_port: int = Field(9092, description="embedded broker client port")
    broker_controller_port: int | None = Field(
        None, description="embedded KRaft controller port (default: broker_port + 1)"
    )
    broker_heap: str = Field("512m", description="embedded broker JVM heap (-Xmx)")
    kafka_version: str = Field("4.1.1", description="Apache Kafka release the broker runs")
    home: Path = Field(default_factory=_default_home, description="cache for jars and state")

    # --- Kafka security ------------------------------------------------------
    # Every client streamrec creates (worker, produce, consume, admin, scripts)
    # takes these; secrets come from the environment or a *_FILE, never argv.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how clients talk to Kafka"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (SASL_* protocols only)"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password")
    kafka_sasl_password_file: Path | None = Field(
        None, description="file holding the SASL password (instead of kafka_sasl_password)"
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle that signs the brokers' certificates; unset = system CAs"
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate (mutual TLS only)"
    )
    kafka_ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate")
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="password of an encrypted kafka_ssl_keyfile"
    )
    kafka_ssl_key_password_file: Path | None = Field(
        None, description="file holding kafka_ssl_key_password"
    )
    pseudonym_secret_file: Path | None = Field(
        None, description="file holding pseudonym_secret (instead of the variable)"
    )
    broker_secrets_dir: Path | None = Field(
        None,
        description="where `broker --secure` keeps its CA, certificate and passwords "
        "(default: <home>/broker-secrets)",
    )

    # --- topics --------------------------------------------------------------
    app_id: str = Field("streamrec", description="Faust app id = consumer group id")
    input_topic: str = "streamrec.events"
    output_topic: str = "streamrec.recommendations"
    dlq_topic: str = "streamrec.events.dlq"
    partitions: int = Field(4, ge=1, description="partitions of input, output and DLQ topics")
    replication_factor: int = Field(1, ge=1)
    dlq_retention_ms: int = Field(
        7 * 24 * 3600 * 1000, description="DLQ retention; the DLQ holds raw input (personal data)"
    )
    control_topic: str = Field(
        "streamrec.control", description="erasure requests (`streamrec forget`)"
    )
    audit_topic: str = Field("streamrec.audit", description="one entry per erasure carried out")
    control_retention_ms: int = Field(
        7 * 24 * 3600 * 1000, description="control topic retention; requests hold raw user ids"
    )
    changelog_segment_ms: int = Field(
        24 * 3600 * 1000,
        ge=1,
        description="table changelog segment roll time: bounds how long erased values linger "
        "before compaction can remove them",
    )
    changelog_min_dirty_ratio: float = Field(
        0.5, gt=0, le=1, description="changelog min.cleanable.dirty.ratio (compaction trigger)"
    )

    # --- worker --------------------------------------------------------------
    store: Literal["rocksdb", "memory"] = Field("rocksdb", description="Faust table store")
    data_dir: Path = Field(Path("var"), description="worker state directory (RocksDB)")
    rocksdb_write_buffer_mb: int = Field(
        4, ge=1, description="RocksDB memtable size, per table partition (two are kept)"
    )
    rocksdb_memory_mb: int = Field(
        64,
        ge=2,
        description="RocksDB memory of the whole worker: one LRU block cache shared by every "
        "table partition, which also pays for the memtables",
    )
    rocksdb_memtables_mb: int = Field(
        16, ge=1, description="memtables of all table partitions together (part of the above)"
    )
    web_port: int = Field(6066, description="Faust web port; give each worker its own")
    web_host: str = "127.0.0.1"
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Prometheus /metrics port of each worker; 0 = off"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="metrics bind address; 0.0.0.0 exposes it (e.g. in a container)"
    )
    session_timeout_s: float = Field(10.0, description="consumer-group session timeout")
    heartbeat_interval_s: float = Field(1.0, description="consumer-group heartbeat interval")
    commit_interval_s: float = Field(
        1.0, gt=0, description="how often processed input offsets are committed"
    )
    producer_linger_ms: int = Field(
        5, ge=0, description="output producer linger: batches sends (fewer requests, +latency)"
    )
    log_level: Literal["crit", "error", "warn", "info", "debug"] = "info"

    # --- logging ---------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        "text", description="log lines as text or as one JSON object per line"
    )
    log_summary_s: float = Field(
        30.0, ge=0, description="a worker logs a one-line summary this often; 0 = never"
    )

    # --- events and state ----------------------------------------------------
    history_len: int = Field(50, ge=1, description="events kept per user")
    user_ttl_s: float = Field(
        30 * 86400, gt=0, description="a user with no event for this long is forgotten"
    )
    sweep_interval_s: float = Field(
        600, gt=0, description="how often each worker sweeps its partitions for idle users"
    )
    max_event_bytes: int = Field(64 * 1024, ge=64, description="larger events go to the DLQ")
    dlq_max_bytes: int = Field(
        8 * MiB, description="original bytes beyond this are truncated in the DLQ copy"
    )
    max_lateness_ms: int = Field(
        3_600_000, description="events older than the user's newest by more go to the DLQ"
    )
    max_future_ms: int = Field(
        86_400_000, description="events stamped further ahead of the wall clock go to the DLQ"
    )
    pseudonym_secret: SecretStr | None = Field(
        None, description="HMAC key; when set user ids are pseudonymised at ingestion"
    )

    # --- scoring and output --------------------------------------------------
    model_dir: Path | None = Field(
        None, description="checkpoint directory of a trained model; unset = online Markov"
    )
    device: str = Field("auto", description="torch device for the model: auto, cpu, cuda:0...")
    model_reload_s: float = Field(
        5.0,
        ge=0,
        description="how often the model directory is checked for a new version; 0 = never",
    )
    influence: Literal["grad_x_input", "leave_one_out", "none"] = Field(
        "grad_x_input", description="how the model explains each recommendation"
    )
    batch_max_size: int = Field(64, ge=1, description="micro-batcher: most requests per batch")
    batch_max_delay_ms: float = Field(
        5.0, ge=0, description="micro-batcher: longest wait of a batch's first request"
    )
    batch_queue_size: int = Field(
        1024, ge=1, description="events in flight (consumed, not yet published); then backpressure"
    )
    torch_threads: int = Field(1, ge=1, description="torch threads of the model")
    inference: Literal["process", "thread"] = Field(
        "process", description="run the model in a child process (no GIL shared) or a thread"
    )
    top_k: int = Field(10, ge=1, description="items per recommendation")
    adjust: bool = Field(True, description="re-rank with the online river adjuster (every scorer)")
    adjust_checkpoint_s: float = Field(
        60, gt=0, description="how often the adjuster is checkpointed to the state directory"
    )
    adjust_model: Literal["slots", "logreg"] = Field(
        "slots",
        description="the adjuster: engagement rates per candidate slot, or a logistic "
        "regression over every feature (measured in the README)",
    )
    adjust_alpha: float = Field(
        1.0, ge=0, le=1, description="weight of the adjuster's probability in the final score"
    )
    purchase_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="purchase propensity at which the live accuracy/precision/recall/F1 "
        "count a prediction as 'will buy'",
    )
    output_format: Literal["msgpack", "json"] = "msgpack"
    markov_window: int = Field(5, ge=1, description="recent events the Markov scorer uses")
    markov_decay: float = Field(0.5, gt=0, le=1, description="weight ratio per step back")
    markov_max_successors: int = Field(50, ge=1, description="successors kept per item")
    popularity_weight: float = Field(0.05, ge=0, description="share of popularity in scores")

    # --- observability ---------------------------------------------------------
    metrics_interval_s: float = Field(
        5.0, gt=0, description="how often each worker samples its consumer lag for /metrics"
    )

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """``<secret>_file`` fills ``<secret>`` from a file (Docker/Kubernetes style),
        so a secret need not sit in the environment either."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in SECRET_FIELDS:
            path = data.get(f"{name}_file")
            if path in (None, ""):
                continue
            if data.get(name) not in (None, ""):
                raise ValueError(f"set {name} or {name}_file, not both")
            try:
                data[name] = Path(path).read_text().rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"cannot read {name}_file: {exc}") from exc
        return data

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and (not self.kafka_sasl_username or self.kafka_sasl_password is None):
            raise ValueError(
                f"kafka_security_protocol={self.kafka_security_protocol} needs "
                "kafka_sasl_username and kafka_sasl_password (or kafka_sasl_password_file)"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError("kafka_ssl_keyfile needs kafka_ssl_certfile")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from a given environment (e.g. one prepared for a child process)."""
        prefix = "STREAMREC_"
        fields = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
        return cls(**{k: v for k, v in fields.items() if k in cls.model_fields})

    @property
    def bootstrap(self) -> str:
        """Where clients connect: the configured cluster or the embedded broker."""
        return self.kafka_bootstrap or f"{self.broker_host}:{self.broker_port}"

    @property
    def controller_port(self) -> int:
        return self.broker_controller_port or self.broker_port + 1


# Every secret field; each has a ``<name>_file`` twin and is shown redacted.
SECRET_FIELDS = tuple(
    name for name, f in Settings.model_fields.items() if f.annotation == SecretStr | None
)

"""One typed settings object, read from ``STREAMREC_*`` environment variables.

Every knob streamrec has lives here, each with a description;
``python -m stream_app.docs_gen`` turns them into ``docs/configuration.md``.

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
        None,
        description="`host:port,...` of a Kafka cluster; unset = the embedded broker "
        "(`streamrec broker`)",
    )
    broker_host: str = Field("127.0.0.1", description="embedded broker bind address")
    broker_port: int = Field(9092, description="embedded broker client port")
    broker_controller_port: int | None = Field(
        None, description="embedded KRaft controller port; unset = the broker port + 1"
    )
    broker_heap: str = Field("512m", description="embedded broker JVM heap (-Xmx)")
    broker_jvm_options: str = Field(
        "",
        description="more options for the embedded broker's JVM, split like a shell "
        "command line; e.g. `-XX:TieredStopAtLevel=1` compiles less at start on small "
        "machines (docs/benchmarks.md)",
    )
    kafka_version: str = Field("4.1.1", description="Apache Kafka release the broker runs")
    kafka_wait_s: float = Field(
        300.0,
        ge=0,
        description="how long the worker, `produce`, `consume`, `forget` (and `state`, for a "
        "worker's web port) wait for an unreachable broker at start, retrying with exponential "
        "backoff, before they exit with status 69; `0` = one try",
    )
    kafka_retry_max_s: float = Field(
        10.0,
        gt=0,
        description="longest pause between two tries while waiting for the broker (the "
        "backoff starts at 0.5 s and doubles up to this)",
    )
    home: Path = Field(
        default_factory=_default_home,
        description="cache for the embedded broker's jars (and its secrets, see below)",
    )

    # --- Kafka security ------------------------------------------------------
    # Every client streamrec creates (worker, produce, consume, admin, scripts)
    # takes these; secrets come from the environment or a *_FILE, never argv.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="how every client streamrec creates talks to Kafka: `PLAINTEXT`, `SSL`, "
        "`SASL_PLAINTEXT` or `SASL_SSL`",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (`SASL_*` protocols only)"
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user name; required with `SASL_*`"
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (secret); required with `SASL_*` unless `_FILE` is set"
    )
    kafka_sasl_password_file: Path | None = Field(
        None, description="file holding the SASL password (instead of the variable)"
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle that signs the brokers' certificates; unset = system CAs"
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate (mutual TLS only)"
    )
    kafka_ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate")
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="password of an encrypted key file (secret)"
    )
    kafka_ssl_key_password_file: Path | None = Field(
        None, description="file holding the key file's password"
    )
    pseudonym_secret_file: Path | None = Field(
        None, description="file holding the pseudonym secret (instead of the variable)"
    )
    broker_secrets_dir: Path | None = Field(
        None,
        description="where `streamrec broker --secure` keeps its CA, broker certificate and "
        "passwords; unset = `<home>/broker-secrets`",
    )

    # --- topics --------------------------------------------------------------
    app_id: str = Field("streamrec", description="Faust app id, which is also the consumer group")
    input_topic: str = Field("streamrec.events", description="input topic (events)")
    output_topic: str = Field(
        "streamrec.recommendations", description="output topic (recommendations)"
    )
    dlq_topic: str = Field("streamrec.events.dlq", description="dead-letter topic")
    partitions: int = Field(
        4,
        ge=1,
        description="partitions of the input, output and DLQ topics (created at start-up; a "
        "mismatch with an existing input topic is an error)",
    )
    replication_factor: int = Field(1, ge=1, description="replication factor of created topics")
    dlq_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        description="DLQ retention (7 days); the DLQ holds raw input, personal data",
    )
    control_topic: str = Field(
        "streamrec.control", description="erasure requests (`streamrec forget`)"
    )
    audit_topic: str = Field(
        "streamrec.audit", description="one entry per erasure carried out (pseudonymous ids)"
    )
    control_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        description="control topic retention (7 days); requests hold raw user ids",
    )
    changelog_segment_ms: int = Field(
        24 * 3600 * 1000,
        ge=1,
        description="table changelog segment roll time: bounds how long erased values linger "
        "before compaction can remove them",
    )
    changelog_min_dirty_ratio: float = Field(
        0.5, gt=0, le=1, description="changelog `min.cleanable.dirty.ratio` (compaction trigger)"
    )

    # --- worker --------------------------------------------------------------
    store: Literal["rocksdb", "memory"] = Field(
        "rocksdb", description="Faust table store: `rocksdb` or `memory`"
    )
    data_dir: Path = Field(Path("var"), description="worker state directory (RocksDB)")
    bulk_restore: bool = Field(
        True,
        description="restore a RocksDB table partition the worker takes over with a plain "
        "consumer and bulk writes before Faust's record-by-record recovery (which then reads "
        "only the tail); `false` = Faust's recovery alone",
    )
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
        16,
        ge=1,
        description="memtables of all table partitions together, flushed past it (part of "
        "the above)",
    )
    web_port: int = Field(
        6066,
        description="worker web port (interactive state queries); give each worker its own",
    )
    web_host: str = Field(
        "127.0.0.1",
        description="worker web bind address, also advertised to the group as the worker's "
        "URL: must be reachable by the other workers",
    )
    metrics_port: int = Field(
        9464,
        ge=0,
        le=65535,
        description="Prometheus `/metrics` port of each worker (its own thread, answers while "
        "the loop is busy); `0` = off; one per worker on a host",
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="metrics bind address: only this machine can scrape; `0.0.0.0` in a container",
    )
    session_timeout_s: float = Field(10.0, description="consumer-group session timeout")
    heartbeat_interval_s: float = Field(1.0, description="consumer-group heartbeat interval")
    group_instance_id: str = Field(
        "auto",
        description="static group membership: a worker started again with the same id gets "
        "its partitions back at once, not after the dead one's session timeout; `auto` = "
        "host name and state directory (unique per worker, stable across its restarts), "
        "empty = off (dynamic membership); the worker's web host and port are appended; "
        "of two running workers with one id, the older stops",
    )
    fetch_max_wait_ms: int = Field(
        100,
        ge=0,
        le=1500,
        description="how long the broker holds the worker's fetch open while less than "
        "`fetch_min_bytes` of input is there (Faust's own value: 1,500); the worker's other "
        "requests (offset lookups of a table restore) queue behind an open fetch",
    )
    fetch_min_bytes: int = Field(
        1,
        ge=1,
        description="the broker answers the worker's fetch once this much input is there, or "
        "after `fetch_max_wait_ms`: e.g. 16384 with a 10 ms wait took a third off the worker's "
        "CPU per event at 1,000 events/s, for about 5 ms more latency (docs/benchmarks.md)",
    )
    commit_interval_s: float = Field(
        1.0,
        gt=0,
        description="how often processed input offsets are committed (after `kill -9`, at "
        "most about this much work is replayed)",
    )
    producer_batch_bytes: int = Field(
        512 * 1024,
        ge=16 * 1024,
        description="the batch worker sends each partition's records in Kafka record batches "
        "of up to this size (keep it under the brokers' message.max.bytes, 1 MiB by default)",
    )
    producer_linger_ms: int = Field(
        5,
        ge=0,
        description="the worker's producer waits this long to batch output and changelog "
        "sends (fewer requests, more latency)",
    )
    log_level: Literal["crit", "error", "warn", "info", "debug"] = Field(
        "info", description="log level: `crit`, `error`, `warn`, `info` or `debug`"
    )

    # --- logging ---------------------------------------------------------------
    log_format: Literal["text", "json"] = Field(
        "text",
        description="`text`, or `json`: one JSON object per line (`ts`, `level`, `logger`, "
        "`message`, plus a summary's fields), for the worker's lines, Faust's own included, "
        "and the CLI's",
    )
    log_summary_s: float = Field(
        30.0,
        ge=0,
        description="a worker logs a one-line summary this often (events, invalid, published, "
        "rate, in flight, owned partitions, approximate users); `0` = never",
    )

    # --- events and state ----------------------------------------------------
    history_len: int = Field(50, ge=1, description="events kept per user")
    user_cache_size: int = Field(
        10_000,
        ge=0,
        description="users' states kept decoded in the worker's memory (a state changed in a "
        "batch is encoded and written once); at most about `history_len` events each",
    )
    user_ttl_s: float = Field(
        30 * 86400, gt=0, description="a user with no event for this long (30 days) is forgotten"
    )
    sweep_interval_s: float = Field(
        600, gt=0, description="how often each worker sweeps its partitions for idle users"
    )
    max_event_bytes: int = Field(64 * 1024, ge=64, description="larger events go to the DLQ")
    dlq_max_bytes: int = Field(
        8 * MiB,
        description="original bytes kept in a dead letter; beyond it the copy is truncated",
    )
    max_lateness_ms: int = Field(
        3_600_000,
        description="tolerated lateness behind the user's newest event; later ones go to the "
        "DLQ as `too_late`",
    )
    max_future_ms: int = Field(
        86_400_000,
        description="tolerated clock skew ahead of the worker; events stamped further ahead go "
        "to the DLQ as `ts_in_future`",
    )
    pseudonym_secret: SecretStr | None = Field(
        None,
        description="HMAC key (secret); when set, user ids are pseudonymised at ingestion",
    )

    # --- scoring and output --------------------------------------------------
    model_dir: Path | None = Field(
        None,
        description="checkpoint directory (from `streamrec train`): serve that model; unset = "
        "the online Markov scorer",
    )
    device: str = Field(
        "auto",
        description="torch device for the model: `auto` (CUDA when present), `cpu`, `cuda:0`...",
    )
    model_reload_s: float = Field(
        5.0,
        ge=0,
        description="how often the model directory is checked for a new checkpoint version "
        "(hot reload); `0` = never",
    )
    influence: Literal["grad_x_input", "leave_one_out", "none"] = Field(
        "grad_x_input",
        description="how the model explains each recommendation: `grad_x_input`, "
        "`leave_one_out` (slow) or `none`",
    )
    stream_batch_max: int = Field(
        1000,
        ge=1,
        description="most input events taken as one batch (state written, outputs sent, "
        "offsets acked and a served model's requests submitted once per batch); 1 processes "
        "one event at a time",
    )
    stream_batch_wait_ms: float = Field(
        0.0,
        ge=0,
        description="a batch smaller than `stream_batch_max` waits this long for more input "
        "before it is processed; 0 takes what the consumer's fetch brought (under load "
        "batches grow by themselves: more arrives while one is processed)",
    )
    stream_overlap: Literal["auto", "on", "off"] = Field(
        "auto",
        description="process the next input batch while one is delivered (its sends and acks "
        "keep their order): `auto` with a served model, whose batches pause for the model; a "
        "Markov batch never pauses, so overlapping only delays the delivery before it",
    )
    batch_max_size: int = Field(64, ge=1, description="micro-batcher: most requests per batch")
    batch_max_delay_ms: float = Field(
        5.0,
        ge=0,
        description="micro-batcher: a batch runs at most this long after its first request arrived",
    )
    batch_queue_size: int = Field(
        1024,
        ge=1,
        description="events in flight (consumed, not yet published); beyond it consumption "
        "waits (backpressure)",
    )
    torch_threads: int = Field(1, ge=1, description="torch intra-op threads of the model")
    serve_precision: Literal["fp32", "bf16", "int8"] = Field(
        "fp32",
        description="arithmetic of the served model's catalogue-wide products: `fp32`; `bf16` "
        "(bfloat16 operands); `int8` (the ranking's product dynamically quantized, CPU only); "
        "the encoder and its influences stay float32; see docs/models.md",
    )
    inference: Literal["process", "thread"] = Field(
        "process",
        description="run the model in a child process (`process`: no GIL shared with the "
        "event loop) or in the worker (`thread`)",
    )
    top_k: int = Field(10, ge=1, description="items per recommendation")
    adjust: bool = Field(
        True,
        description="re-rank with the online river adjuster (with every scorer: the Markov "
        "scorer inline, a served model's answers back on the event loop)",
    )
    adjust_checkpoint_s: float = Field(
        60,
        gt=0,
        description="how often the adjuster is checkpointed to "
        "`$STREAMREC_DATA_DIR/<app id>/adjuster/` (also at shutdown; restored at start)",
    )
    adjust_model: Literal["slots", "logreg"] = Field(
        "slots",
        description="the adjuster: `slots` (engagement rates per candidate slot, a river "
        "`stats.Mean` per slot) or `logreg` (river logistic regression over every feature)",
    )
    adjust_learn_every: int = Field(
        64,
        ge=1,
        description="the adjuster learns in blocks of this many labelling events (its "
        "predictions in between are cached; `1`: after every event)",
    )
    adjust_alpha: float = Field(
        1.0,
        ge=0,
        le=1,
        description="weight of the adjuster's probability in the final score (the rest: "
        "`1 / (1 + scorer rank)`)",
    )
    purchase_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="purchase propensity at which the live accuracy/precision/recall/F1 "
        "count a prediction as 'will buy'",
    )
    output_format: Literal["msgpack", "json"] = Field(
        "msgpack", description="value format of the recommendations: `msgpack` or `json`"
    )
    markov_window: int = Field(5, ge=1, description="recent events the Markov scorer uses")
    markov_decay: float = Field(
        0.5, gt=0, le=1, description="Markov scorer: weight ratio per step back"
    )
    markov_max_successors: int = Field(
        50, ge=1, description="successors kept per item (space-saving eviction)"
    )
    popularity_weight: float = Field(0.05, ge=0, description="share of popularity in scores")

    # --- continual trainer (`streamrec trainer`) --------------------------------
    trainer_group: str | None = Field(
        None,
        description="the trainer's consumer group; unset = `<app id>-trainer` (never the "
        "workers' group, so it takes no partition from them)",
    )
    trainer_dir: Path = Field(
        Path("var/trainer"),
        description="the trainer's own state: the window snapshot and rejected candidates",
    )
    trainer_versions_dir: Path | None = Field(
        None,
        description="where promoted checkpoints are written, one directory per version, for "
        "`STREAMREC_MODEL_DIR` (a symlink) to point at; unset = `<model dir>.versions` beside "
        "it (workers must see it too)",
    )
    trainer_interval_s: float = Field(
        300.0, gt=0, description="a candidate is trained this often (when new events arrived)"
    )
    trainer_every_events: int = Field(
        0,
        ge=0,
        description="also train a candidate as soon as this many new events arrived; `0` = "
        "only on the interval",
    )
    trainer_min_events: int = Field(
        1000,
        ge=2,
        description="events the window must hold before the first round (training from "
        "scratch waits for them too)",
    )
    trainer_window_events: int = Field(
        200_000, ge=100, description="events the window keeps at most (users idle longest go first)"
    )
    trainer_window_age_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="events older than this behind the newest event (stream time) leave the window",
    )
    trainer_user_events: int = Field(
        50, ge=2, description="most recent events the window keeps per user"
    )
    trainer_holdout_events: int = Field(
        500,
        ge=1,
        description="the most recent events held out of training; candidate and current "
        "model are judged on them (next-item HR@10, NDCG@10)",
    )
    trainer_gate_margin: float = Field(
        0.05,
        ge=0,
        description="relative margin of the gate: a candidate fails only if its mean per-event "
        "holdout NDCG@10 is below the reference's (the current model, and the oldest kept "
        "ancestor) by more than this share of the reference's score and by more than "
        "`STREAMREC_TRAINER_GATE_Z` standard errors",
    )
    trainer_gate_z: float = Field(
        1.64,
        ge=0,
        description="standard errors of the paired per-event NDCG@10 difference (clustered by "
        "user) a candidate may lose and still pass: the gate's tolerance of holdout noise",
    )
    trainer_epochs: int = Field(3, ge=1, description="fine-tuning epochs over the window per round")
    trainer_lr: float = Field(1e-3, gt=0, description="fine-tuning learning rate (AdamW)")
    trainer_batch_size: int = Field(64, ge=1, description="users per fine-tuning step")
    trainer_dim: int = Field(
        32, ge=4, description="embedding width of a model trained from scratch (no checkpoint)"
    )
    trainer_transition_weight: float = Field(
        1.0,
        ge=0,
        description="blend weight of the Markov-1 transition counts in a model trained from "
        "scratch (a checkpoint's own blend is kept): counts place items first seen in the "
        "stream at once, before training does",
    )
    trainer_threads: int = Field(
        1, ge=1, description="torch CPU threads of the trainer (its own process)"
    )
    trainer_keep: int = Field(
        5, ge=1, description="promoted versions and rejected candidates kept on disk (each)"
    )
    trainer_snapshot_s: float = Field(
        10.0, gt=0, description="how often the window is written to disk and offsets committed"
    )
    trainer_metrics_port: int = Field(
        9465, ge=0, le=65535, description="the trainer's Prometheus `/metrics` port; `0` = off"
    )
    trainer_shuffle_labels: bool = Field(
        False,
        description="a drill: train candidates on shuffled next items, which the gate must "
        "reject; never in production",
    )

    # --- observability ---------------------------------------------------------
    metrics_interval_s: float = Field(
        5.0,
        gt=0,
        description="how often each worker samples its consumer lag "
        "(`streamrec_consumer_lag_messages`)",
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
        known: dict[str, Any] = {k: v for k, v in fields.items() if k in cls.model_fields}
        return cls(**known)

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

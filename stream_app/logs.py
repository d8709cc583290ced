"""Logging for the worker and the CLI: text or one JSON object per line.

One configuration serves both: :func:`configure` for the CLI's own commands,
:func:`dict_config` for the Faust worker, which installs its logging itself
(mode's ``setup_logging``) and so also formats Faust's own lines this way.
No log line carries a user id: events are named by ``topic:partition:offset``,
and with pseudonymisation on, tracebacks are logged without exception messages.
Kafka client errors that a healthy cluster answers for a moment and that the
client retries (:data:`TRANSIENT_ERRORS`) are logged at INFO, not ERROR.

>>> import json, logging
>>> rec = logging.makeLogRecord({"name": "w", "levelname": "INFO", "msg": "hi %s",
...                              "args": ("you",), "fields": {"events": 3}})
>>> doc = json.loads(JsonFormatter().format(rec))
>>> doc["message"], doc["events"], doc["level"]
('hi you', 3, 'INFO')
"""

from __future__ import annotations

import json
import logging
import logging.config
import traceback
from datetime import UTC, datetime
from typing import Any

from stream_app.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = {"crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and any structured
    ``fields`` passed as ``extra={"fields": {...}}`` (summaries), at top level."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False, default=str)


# Retriable errors a healthy cluster answers for a moment, at start or while a
# partition moves: a leader not yet elected or loaded, a group coordinator still
# loading. aiokafka logs them as ERROR or WARNING, then retries.
TRANSIENT_ERRORS = (
    "NotLeaderForPartitionError",
    "LeaderNotAvailableError",
    "GroupCoordinatorNotAvailableError",
    "GroupLoadInProgressError",
    "NotCoordinatorForGroupError",
)


class TransientClientErrors(logging.Filter):
    """aiokafka's lines about :data:`TRANSIENT_ERRORS` go out at INFO (dropped
    where the logger does not show INFO); anything else, as logged.

    >>> f = TransientClientErrors()
    >>> rec = logging.makeLogRecord({"name": "aiokafka.consumer.fetcher", "levelno": 40,
    ...     "levelname": "ERROR", "msg": "Failed fetch offsets from 1: [Error 6] "
    ...     "NotLeaderForPartitionError: TopicPartition(topic='t', partition=2)"})
    >>> _ = f.filter(rec); rec.levelname
    'INFO'
    >>> real = logging.makeLogRecord({"name": "aiokafka", "levelno": 40, "levelname": "ERROR",
    ...     "msg": "Unable connect to node with id 1"})
    >>> f.filter(real), real.levelname
    (True, 'ERROR')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.INFO or not record.name.startswith("aiokafka"):
            return True
        message = record.getMessage()
        if not any(name in message for name in TRANSIENT_ERRORS):
            return True
        record.levelno, record.levelname = logging.INFO, "INFO"
        return logging.getLogger(record.name).isEnabledFor(logging.INFO)


class WithholdExceptionText(logging.Filter):
    """Tracebacks keep their frames but lose each exception's message, which may
    quote input data (a user id); installed when ids are pseudonymised.

    >>> user = "alice"
    >>> try:
    ...     raise KeyError(user)
    ... except KeyError as e:
    ...     rec = logging.makeLogRecord({"msg": "failed", "exc_info": (KeyError, e, None)})
    >>> WithholdExceptionText().filter(rec), "alice" in rec.exc_text, "KeyError" in rec.exc_text
    (True, False, True)
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = withheld_traceback(record.exc_info[1])
        return True


def withheld_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` and its chain, exception types only, no messages."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    parts = []
    for e in reversed(chain):  # innermost first, as Python prints them
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(e.__traceback__))
        parts.append(f"{type(e).__module__}.{type(e).__qualname__}: (message withheld)\n")
    return "".join(parts).rstrip("\n")


def dict_config(settings: Settings) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for ``settings`` (stderr, the chosen format)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    )
    withhold = settings.pseudonym_secret is not None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"streamrec": formatter},
        "filters": {
            "withhold": {"()": WithholdExceptionText},
            "transient": {"()": TransientClientErrors},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "streamrec",
                "filters": ["transient", "withhold"] if withhold else ["transient"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": LEVELS[settings.log_level], "handlers": ["default"]},
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(dict_config(settings))

"""Logging for the worker and the CLI: text or one JSON object per line.

One configuration serves both: :func:`configure` for the CLI's own commands,
:func:`dict_config` for the Faust worker, which installs its logging itself
(mode's ``setup_logging``) and so also formats Faust's own lines this way.
No log line carries a user id: events are named by ``topic:partition:offset``.

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
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def dict_config(settings: Settings) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` for ``settings`` (stderr, the chosen format)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if settings.log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"streamrec": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "streamrec",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": LEVELS[settings.log_level], "handlers": ["default"]},
    }


def configure(settings: Settings) -> None:
    logging.config.dictConfig(dict_config(settings))

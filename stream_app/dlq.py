"""Dead letters: the original bytes, the reason, and where they came from.

The value is the original message value, unchanged (truncated only beyond
``dlq_max_bytes``), so a dead letter can be inspected or replayed as is. The
reason and the source coordinates travel in headers.
"""

from __future__ import annotations

from stream_app.outgoing import Header, Outgoing

REASON = "streamrec.reason"
DETAIL = "streamrec.detail"
SOURCE_TOPIC = "streamrec.source.topic"
SOURCE_PARTITION = "streamrec.source.partition"
SOURCE_OFFSET = "streamrec.source.offset"
TRUNCATED = "streamrec.truncated_from"


def dead_letter(
    dlq_topic: str,
    raw: bytes | None,
    key: bytes | None,
    reason: str,
    detail: str,
    source: tuple[str, int, int],
    max_bytes: int,
) -> Outgoing:
    topic, partition, offset = source
    headers: list[Header] = [
        (REASON, reason.encode()),
        (DETAIL, detail.encode()[:1000]),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
    value = raw or b""
    if len(value) > max_bytes:
        headers.append((TRUNCATED, str(len(value)).encode()))
        value = value[:max_bytes]
    return Outgoing(dlq_topic, key, value, headers)


def headers_dict(headers: list[Header] | None) -> dict[str, str]:
    """Decode headers for display: ``{name: text}``."""
    return {k: v.decode(errors="replace") for k, v in headers or []}

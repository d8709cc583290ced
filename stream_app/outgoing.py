"""A message the worker wants published."""

from __future__ import annotations

from typing import NamedTuple

Header = tuple[str, bytes]


class Outgoing(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: list[Header] | None = None

"""Wire codecs: msgpack by default, JSON when a value starts with ``{``.

``{`` (0x7b) is a positive fixint in msgpack, never the start of a map, so one
topic can carry both encodings without a header.

>>> decode_value(b'{"a": 1}')
{'a': 1}
>>> decode_value(encode_value({"a": 1}, "msgpack"))
{'a': 1}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import msgpack

Format = Literal["msgpack", "json"]


class DecodeError(ValueError):
    """The bytes are neither valid JSON nor valid msgpack."""


def decode_value(raw: bytes) -> Any:
    if raw[:1] == b"{":
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as exc:  # incl. over-long ints, deep nesting
            raise DecodeError(f"invalid JSON: {type(exc).__name__}: {exc}"[:300]) from None
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise DecodeError(f"invalid msgpack: {type(exc).__name__}: {exc}") from None


def encode_value(obj: Any, fmt: Format = "msgpack") -> bytes:
    if fmt == "json":
        return json.dumps(obj, separators=(",", ":")).encode()
    return msgpack.packb(obj, use_bin_type=True)


def value_encoder(fmt: Format = "msgpack") -> Callable[[Any], bytes]:
    """:func:`encode_value` for one format, for one thread's use: a msgpack packer
    is made once, not per value (``packb`` makes one per call).

    >>> value_encoder("msgpack")({"a": [1.5]}) == encode_value({"a": [1.5]}, "msgpack")
    True
    """
    if fmt == "json":
        return partial(encode_value, fmt="json")
    return msgpack.Packer(use_bin_type=True, autoreset=True).pack

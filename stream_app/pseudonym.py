"""Pseudonymous user ids: a keyed hash applied at ingestion.

With a secret configured, a user id is replaced by HMAC-SHA256(secret, id),
truncated to 128 bits and hex-encoded, before any state, log line or output
sees it. Anyone holding the secret computes the same id:

>>> Pseudonymizer("s3cret")("42")
'982005f6c4662ae06eaa3ba4eac3c645'
"""

from __future__ import annotations

import hashlib
import hmac

from stream_app.settings import Settings

DIGEST_BYTES = 16  # 128 bits: collision-free in practice, short enough for keys


class Pseudonymizer:
    """Maps a raw user id to its pseudonym."""

    def __init__(self, secret: str | bytes) -> None:
        if not secret:
            raise ValueError("the pseudonym secret must not be empty")
        self._key = secret.encode() if isinstance(secret, str) else secret

    def __call__(self, user_id: str) -> str:
        mac = hmac.new(self._key, user_id.encode("utf-8"), hashlib.sha256)
        return mac.digest()[:DIGEST_BYTES].hex()

    @classmethod
    def from_settings(cls, settings: Settings) -> Pseudonymizer | None:
        secret = settings.pseudonym_secret
        return cls(secret.get_secret_value()) if secret is not None else None

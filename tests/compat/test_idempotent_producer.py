"""Guard :mod:`stream_app.compat.idempotent_producer`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stream_app.compat import idempotent_producer
from tests.compat.guard_cases import both_versions, invariant, new_app


@both_versions(idempotent_producer)
async def test_the_producer_is_idempotent_without_transactions(
    impl: Callable[..., Any], upstream: bool
) -> None:
    app = new_app()
    assert not app.in_transaction  # at-least-once, streamrec's guarantee
    settings = {**app.producer._settings_default(), **impl(app.producer)}
    with invariant(upstream):
        assert settings.get("enable_idempotence") is True
        assert settings.get("acks") == "all"

"""stream_app.compat as a whole: the pin, the order, an idempotent apply."""

from __future__ import annotations

import pytest

from stream_app import compat


def test_the_pin_refuses_another_faust() -> None:
    compat.check_pin(compat.PINNED_FAUST)
    with pytest.raises(ImportError, match=r"faust-streaming==0\.15\.3"):
        compat.check_pin("0.15.4")


def test_apply_installs_every_guard_once_in_order() -> None:
    assert [g.__name__.rsplit(".", 1)[1] for g in compat.GUARDS] == [
        "recovery_seek",
        "pause_forgets_buffer",
        "buffer_drop",
        "fetch_guard",
        "seek_uncommitted",
        "revoke_commit_first",
        "commit_in_flight",
        "idempotent_producer",
        "direct_delivery",
        "heartbeat_while_assigning",
        "static_leave",
        "static_fencing",
    ]
    compat.apply()
    compat.apply()
    for guard in compat.GUARDS:
        assert getattr(guard.OWNER, guard.NAME) is guard.patched
        assert guard.upstream is not guard.patched
        assert guard.upstream.__qualname__.endswith(guard.NAME)  # saved before patching

"""Narrow fixes for faust-streaming 0.15.3: events lost or duplicated around rebalances,
and the per-message cost of delivering input to the batch loop.

One module per guard, each naming the invariant it restores, the upstream code it
replaces and the upstream issue. :func:`apply` (called by ``stream_app.app``) installs
them all, once, in the order of :data:`GUARDS`. Every guard replaces upstream code read
line by line in 0.15.3, so the pin is checked when this package is imported.
Design notes and measured outcomes: ``docs/design/faust-recovery.md``.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from types import ModuleType

log = logging.getLogger(__name__)

PINNED_FAUST = "0.15.3"


def check_pin(installed: str) -> None:
    """Refuse any faust-streaming but the one these guards were written against."""
    if installed != PINNED_FAUST:
        raise ImportError(
            f"stream_app.compat was written against faust-streaming=={PINNED_FAUST}, "
            f"found {installed}: re-check upstream issue #596 and every guard before upgrading"
        )


check_pin(version("faust-streaming"))

from stream_app.compat import (  # noqa: E402
    buffer_drop,
    commit_in_flight,
    direct_delivery,
    fetch_guard,
    heartbeat_while_assigning,
    idempotent_producer,
    pause_forgets_buffer,
    recovery_seek,
    revoke_commit_first,
    seek_uncommitted,
    static_fencing,
    static_leave,
)

#: Installed in this order. Each module has ``OWNER``, ``NAME``, ``upstream`` (the
#: function it replaces, saved at import) and ``patched``.
GUARDS: tuple[ModuleType, ...] = (
    recovery_seek,
    pause_forgets_buffer,
    buffer_drop,
    fetch_guard,
    seek_uncommitted,
    revoke_commit_first,
    commit_in_flight,
    idempotent_producer,
    direct_delivery,
    heartbeat_while_assigning,
    static_leave,
    static_fencing,
)

_APPLIED = False


def apply() -> None:
    """Install the guards (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    for guard in GUARDS:
        setattr(guard.OWNER, guard.NAME, guard.patched)
    _APPLIED = True
    log.debug("faust-streaming %s patched: recovery-end seek while paused (#596)", PINNED_FAUST)

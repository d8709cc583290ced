"""Shared by the guard tests: real Faust objects without a broker, and the two versions.

Every guard test runs its body against the guard (the invariant holds) and against the
upstream function it replaces (the same assertions must fail), so each test is shown
to be able to fail.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NamedTuple

import faust
import pytest
from faust.types import TP

INPUT = TP("events", 0)
INPUT_2 = TP("events", 1)
CHANGELOG = TP("streamrec-users-changelog", 0)


class Record(NamedTuple):
    """What aiokafka's fetcher returns, as far as the guards look at it."""

    offset: int


def records(first: int, last: int) -> list[Record]:
    """Records ``first`` to ``last`` (both included)."""
    return [Record(o) for o in range(first, last + 1)]


def both_versions(guard: ModuleType) -> pytest.MarkDecorator:
    """Parametrize ``impl, upstream`` with the guard and the function it replaces."""
    return pytest.mark.parametrize(
        "impl, upstream",
        [(guard.patched, False), (guard.upstream, True)],
        ids=["guarded", "upstream-violates"],
    )


@contextlib.contextmanager
def invariant(upstream: bool) -> Iterator[None]:
    """The assertions inside hold for the guard; for upstream's code they must fail."""
    if upstream:
        with pytest.raises(AssertionError):
            yield
    else:
        yield


def new_app() -> Any:
    """A real app (consumer, producer, recovery) that never connects: nothing is started.

    Typed ``Any``: the tests reach into Faust internals.
    """
    app: Any = faust.App(f"compat-{uuid.uuid4().hex[:8]}", broker="kafka://127.0.0.1:1")
    app.topics._acking_topics.add(INPUT.topic)  # what an agent on the input topic does
    assert app.topics.acks_enabled_for(INPUT.topic)
    assert not app.topics.acks_enabled_for(CHANGELOG.topic)
    return app


def consumer_of(app: Any) -> Any:
    """``app.consumer``: faust's aiokafka Consumer, a ``ThreadDelegateConsumer``."""
    return app.consumer

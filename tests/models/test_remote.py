"""The model in its own process: the same answers as in this one, fed from the event
loop or from a thread, a cancelled batch's answer never given to the next caller,
and a failure reported, not hung on."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.base import Interaction
from models.nn.vocab import ItemVocab
from models.serving import checkpoint
from models.serving.microbatch import MicroBatcher
from models.serving.remote import ProcessScorer, _histories, _request
from models.serving.scorer import NeuralScorer

ITEMS = [str(100 + i) for i in range(30)]


def histories(seed: int, n: int = 6) -> list[list[Interaction]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, n)
    return [
        [Interaction(ITEMS[int(i)], "view", 1000 * t) for t, i in enumerate(rng.integers(0, 30, m))]
        for m in lengths
    ]


@pytest.fixture
def served(tmp_path: Path, make_network: Callable[..., Any]) -> Any:
    checkpoint.save(tmp_path, make_network("bsarec"), ItemVocab(ITEMS), None, {"dataset": "unit"})
    child = ProcessScorer(tmp_path, "cpu")
    yield child, NeuralScorer.load(tmp_path, "cpu")
    child.close()


def test_the_loop_and_a_thread_get_what_the_model_gives_here(served: Any) -> None:
    child, here = served

    async def both() -> tuple[Any, Any]:
        on_loop = await child.score_async(histories(1), 5)
        on_thread = await asyncio.to_thread(child.score, histories(2), 5)
        return on_loop, on_thread

    on_loop, on_thread = asyncio.run(both())
    assert on_loop == here.score(histories(1), 5)
    assert on_thread == here.score(histories(2), 5)


def test_histories_cross_the_pipe_as_plain_tuples_and_come_back_whole() -> None:
    sent = histories(4)
    raw = _request(sent, 5)
    assert b"Interaction" not in raw  # no class reference per event
    rows, k = pickle.loads(raw)
    back = _histories(rows)
    assert (back, k) == (sent, 5)
    assert all(type(e) is Interaction for row in back for e in row)


def test_a_cancelled_batch_answer_goes_to_no_one(served: Any) -> None:
    child, here = served

    async def cancel_then_ask() -> Any:
        first = asyncio.ensure_future(child.score_async(histories(3, 40), 5))
        await asyncio.sleep(0)  # written to the pipe
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return await child.score_async(histories(4), 5)

    assert asyncio.run(cancel_then_ask()) == here.score(histories(4), 5)
    assert child.score(histories(5), 5) == here.score(histories(5), 5)


def test_the_batcher_feeds_the_model_from_the_loop(served: Any) -> None:
    child, here = served
    seqs = histories(6, 20)

    async def submit() -> list[Any]:
        fn = lambda batch: child.score(batch, 5)  # noqa: E731
        afn = lambda batch: child.score_async(batch, 5)  # noqa: E731
        async with MicroBatcher(fn, afn=afn, max_batch_size=8) as batcher:
            return await batcher.submit_many(seqs)

    assert asyncio.run(submit()) == here.score(seqs, 5)


def test_a_failing_batch_raises_and_the_process_serves_on(served: Any) -> None:
    child, here = served
    with pytest.raises(Exception):  # noqa: B017 - whatever the model raises, it arrives here
        asyncio.run(child.score_async([["not an interaction"]], 5))  # type: ignore[list-item]
    assert child.score(histories(7), 5) == here.score(histories(7), 5)


def test_a_model_that_does_not_load_is_an_error_at_start(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"meta.json|No such file|not found"):
        ProcessScorer(tmp_path / "missing", "cpu")

"""The worker's pipeline, built in one place for the Faust worker and for
``streamrec replay-eval`` (which must measure exactly what the worker runs).

Data flows one way: event -> state -> scorer -> adjuster -> publisher. The
:class:`~stream_app.processor.Processor` applies events to :class:`State`, the
scorer ranks, the adjuster re-ranks; the caller publishes what comes out.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from models.base import Scorer
from models.markov import MarkovScorer, TransitionStore
from stream_app.adjustment import OnlineAdjustment
from stream_app.processor import Processor
from stream_app.settings import Settings


@dataclass(slots=True)
class State:
    """Where the pipeline keeps its state: Faust tables in the worker, dicts in a replay."""

    users: MutableMapping[bytes, bytes]  # per-user history (UserState)
    transitions: TransitionStore  # the online Markov model's counts
    feedback: MutableMapping[bytes, bytes] | None = None  # the adjuster's open lists


@dataclass(slots=True)
class Components:
    """The pipeline's parts, in the order an event goes through them."""

    state: State
    scorer: Scorer
    markov: MarkovScorer | None  # the online Markov model, when it is the scorer
    adjust: OnlineAdjustment | None
    processor: Processor


def build_components(settings: Settings, state: State, model: Scorer | None = None) -> Components:
    """The pipeline over ``state``. ``model``: a trained scorer to serve; without one
    the online Markov model scores, and learns from every applied event."""
    markov: MarkovScorer | None = None
    scorer: Scorer
    if model is None:
        scorer = markov = MarkovScorer(
            state.transitions,
            window=settings.markov_window,
            decay=settings.markov_decay,
            popularity_weight=settings.popularity_weight,
        )
    else:
        scorer = model
    # The adjuster learns and re-ranks on the event loop (Processor.ingest/render),
    # whatever the scorer; only a model's scoring may run on another thread.
    adjust = (
        OnlineAdjustment(
            settings.top_k,
            settings.adjust_alpha,
            purchase_threshold=settings.purchase_threshold,
            feedback_store=state.feedback,
            model=settings.adjust_model,
            learn_every=settings.adjust_learn_every,
        )
        if settings.adjust
        else None
    )
    processor = Processor(settings, state.users, scorer, learner=markov, adjust=adjust)
    return Components(state, scorer, markov, adjust, processor)

"""Configuration of a sequence model, stored verbatim in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

ARCHS = ("bsarec", "transformer", "lstm", "gru")


@dataclass(slots=True)
class BlendConfig:
    """How the final ranking score of item j is formed (log space, so weights are exponents):

    ``score_j = next_item * log P(next = j | history)``
    ``        + purchase * log P(purchase | next = j, history)``
    ``        + transition * log P_T(j | last item)``
    ``        - seen * [j is among the events in the model window]``

    ``P_T`` is the Markov-1 transition estimate from training data, smoothed towards
    popularity with pseudo-count ``transition_alpha``. ``purchase`` only counts when
    the purchase head was trained (data with event types). ``seen`` demotes items
    already in the user's window (0: repeats rank as the network says; large: never
    re-recommend). ``train`` tunes ``transition``, ``transition_alpha`` and ``seen``
    on the validation split.
    """

    next_item: float = 1.0
    purchase: float = 0.5
    transition: float = 0.0
    transition_alpha: float = 1.0
    seen: float = 0.0


@dataclass(slots=True)
class ModelConfig:
    arch: str = "bsarec"
    n_items: int = 0  # catalogue size (real items, without padding/unknown)
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 2
    dropout: float = 0.5  # on hidden states and attention weights
    max_len: int = 50
    alpha: float = 0.7  # bsarec: weight of the frequency filter against attention
    cutoff: int = 5  # bsarec: the filter keeps cutoff // 2 + 1 low Fourier modes
    positions: str = "absolute"  # bsarec: "absolute" table or "relative" attention bias
    filter_scope: str = "window"  # bsarec: "causal" (one pass) or "window" (prefix samples)
    use_events: bool = False  # False: the training data had no event types
    use_time: bool = False  # False: the training data had no timestamps
    purchase_trained: bool = False
    blend: BlendConfig = field(default_factory=BlendConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        kwargs["blend"] = BlendConfig(**d.get("blend", {}))
        # Checkpoints written before these fields existed used the absolute table and
        # the causal filter.
        kwargs.setdefault("positions", "absolute")
        kwargs.setdefault("filter_scope", "causal")
        return cls(**kwargs)

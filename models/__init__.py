"""Scoring models for streamrec: the scorer interface and its implementations."""

# First: its finder decides, for each compiled module, compiled or source.
from models import compiled  # noqa: F401  (sorts first, and must)
from models.base import Interaction, Learner, Scored, Scorer

__all__ = ["Interaction", "Learner", "Scored", "Scorer"]

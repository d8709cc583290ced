"""Scoring models for streamrec: the scorer interface and its implementations."""

from models.base import Interaction, Learner, Scored, Scorer

__all__ = ["Interaction", "Learner", "Scored", "Scorer"]

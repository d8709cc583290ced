"""Scoring models for streamrec: the scorer interface and its implementations."""

from models.base import Interaction, Scored, Scorer

__all__ = ["Interaction", "Scored", "Scorer"]

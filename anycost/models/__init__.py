"""Models: the Anycost generator and its building blocks."""

from anycost.models.channel_sort import sort_channels
from anycost.models.generator import Generator

__all__ = ["Generator", "sort_channels"]

"""Models: the Anycost generator, its discriminator and their building blocks."""

from anycost.models.channel_sort import sort_channels
from anycost.models.discriminator import Discriminator, arch_vector
from anycost.models.generator import Generator

__all__ = ["Discriminator", "Generator", "arch_vector", "sort_channels"]

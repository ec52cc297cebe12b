"""Projection of images into W+: a consistency-aware encoder and optimisation-based projection."""

from anycost.projection.encoder import Encoder, load_encoder, save_encoder
from anycost.projection.optimize import Projection, load_target, project

__all__ = ["Encoder", "Projection", "load_encoder", "load_target", "project", "save_encoder"]

"""Projection of images into W+: a consistency-aware encoder and optimisation-based projection."""

from anycost.projection.encoder import Encoder, default_encoder, load_encoder, save_encoder
from anycost.projection.optimize import Projection, load_target, project

__all__ = ["Encoder", "Projection", "default_encoder", "load_encoder", "load_target", "project", "save_encoder"]

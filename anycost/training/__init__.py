"""Anycost GAN training: losses, sub-generator sampling, the trainer and multi-process support."""

from anycost.training.config import STAGES, TrainConfig
from anycost.training.trainer import Trainer

__all__ = ["STAGES", "TrainConfig", "Trainer"]

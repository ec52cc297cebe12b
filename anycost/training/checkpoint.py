"""Reading training checkpoints (written by `Trainer.save`) with clear errors for bad files."""

from __future__ import annotations

from anycost.fileio import load_torch_checkpoint

REQUIRED_KEYS = ("format", "version", "config", "step", "G", "D", "G_ema", "opt_G", "opt_D", "pl_mean")


def load_training_state(path) -> dict:
    """The state dict of a training checkpoint; CheckpointError if it is missing, corrupt or not one."""
    return load_torch_checkpoint(path, "anycost-train", 1, "training checkpoint", REQUIRED_KEYS,
                                 hint=" (a generator file? use it with --init)")

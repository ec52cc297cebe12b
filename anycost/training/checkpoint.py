"""Reading training checkpoints (written by `Trainer.save`) with clear errors for bad files."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from anycost.checkpoints import CheckpointError

REQUIRED_KEYS = ("format", "version", "config", "step", "G", "D", "G_ema", "opt_G", "opt_D", "pl_mean")


def load_training_state(path) -> dict:
    """The state dict of a training checkpoint; CheckpointError if it is missing, corrupt or not one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no training checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path}: corrupt or truncated training checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format") != "anycost-train":
        raise CheckpointError(f"{path}: not an anycost training checkpoint (a generator file? use it with --init)")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path}: training checkpoint lacks {missing}")
    if state["version"] != 1:
        raise CheckpointError(f"{path}: unsupported training checkpoint version {state['version']!r}")
    return state

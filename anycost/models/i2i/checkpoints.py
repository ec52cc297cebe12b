"""Save and load image-to-image generators: one ``.safetensors`` file, tensors only.

Its header metadata holds ``format`` / ``format_version`` (checked on load), ``family: "i2i"``, the JSON
architecture (`I2IArch.to_dict`), the anycost version and free-form provenance (``info``). An exported
sub-network is saved like any generator: its arch carries its own widths. Every load checks the tags, the
architecture, then every key and shape before touching a model, and fails with a one-line `CheckpointError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anycost.fileio import CheckpointError, check_state, read_tagged_safetensors, write_tagged_safetensors
from anycost.models.i2i.arch import I2IArch
from anycost.models.i2i.generator import I2IGenerator

FORMAT = "anycost-i2i-generator"
FORMAT_VERSION = 1
FAMILY = "i2i"


def save_generator(G: I2IGenerator, path, metadata: dict | None = None) -> Path:
    """Write `G` (and the JSON-serialisable `metadata`, e.g. its training run) to `path`, atomically."""
    return write_tagged_safetensors(path, G.state_dict(), FORMAT, FORMAT_VERSION, metadata, family=FAMILY,
                                    arch=G.arch.to_dict())


def _read(path: Path, tensors: bool = True) -> tuple[dict, dict]:
    if not path.is_file():
        raise FileNotFoundError(f"no i2i generator at {path}")
    meta, state = read_tagged_safetensors(path, FORMAT, FORMAT_VERSION, "i2i generator", tensors)
    if meta.get("family") != FAMILY:
        raise CheckpointError(f"{path}: family {meta.get('family')!r}, expected {FAMILY!r}")
    return meta, state


def load_generator(path, map_location: str | torch.device = "cpu") -> I2IGenerator:
    """The generator saved at `path` by `save_generator`, in eval mode on `map_location`."""
    path = Path(path)
    meta, state = _read(path)
    try:
        arch = I2IArch.from_dict(json.loads(meta["arch"]))
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad architecture metadata ({err})") from None
    with torch.device("meta"):
        G = I2IGenerator(arch)
    G = G.to_empty(device="cpu")
    check_state(state, G.state_dict(), str(path))
    G.load_state_dict(state)
    return G.to(map_location).eval()


def read_metadata(path) -> dict:
    """The provenance dict saved with the generator at `path` (no tensors read)."""
    path = Path(path)
    meta, _ = _read(path, tensors=False)
    try:
        return json.loads(meta.get("info", "{}"))
    except ValueError as err:
        raise CheckpointError(f"{path}: bad metadata ({err})") from None

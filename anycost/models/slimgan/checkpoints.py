"""Save and load slimmable generators: one safetensors file, tensors only.

Its header metadata says ``format = "anycost-slimgan"`` (so another family's loader refuses it by name),
``family = "slimgan"`` (what a loader of every family dispatches on), the format version, the JSON
`SlimArch` and free-form provenance (``info``). Every key, shape and value is checked before anything is
loaded into a model, and every problem is a one-line `CheckpointError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anycost.fileio import CheckpointError, check_state, read_tagged_safetensors, write_tagged_safetensors
from anycost.models.slimgan.arch import SlimArch
from anycost.models.slimgan.generators import SlimGenerator, build_generator

FORMAT = "anycost-slimgan"
FAMILY = "slimgan"
FORMAT_VERSION = 1
#: BatchNorm's integer step counters: they only matter for momentum=None, which these models never use, and
#: the checked readers take floating-point tensors only, so they are neither saved nor loaded.
SKIPPED_SUFFIX = "num_batches_tracked"


def _tensors(G: SlimGenerator) -> dict[str, torch.Tensor]:
    return {k: v for k, v in G.state_dict().items() if not k.endswith(SKIPPED_SUFFIX)}


def save_generator(G: SlimGenerator, path, metadata: dict | None = None) -> Path:
    """Write `G` (weights and the running statistics of every width) to `path`, atomically."""
    return write_tagged_safetensors(path, _tensors(G), FORMAT, FORMAT_VERSION, metadata, family=FAMILY,
                                    arch=G.arch.to_dict())


def read_generator(path) -> tuple[SlimGenerator, dict]:
    """(generator in eval mode on the CPU, provenance dict) from a file `save_generator` wrote."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no SlimGAN generator at {path}")
    meta, state = read_tagged_safetensors(path, FORMAT, FORMAT_VERSION, "SlimGAN generator")
    if meta.get("family") != FAMILY:
        raise CheckpointError(f"{path}: model family {meta.get('family')!r}, expected {FAMILY!r}")
    try:
        arch = SlimArch.from_dict(json.loads(meta["arch"]))
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad architecture metadata ({err})") from None
    with torch.device("meta"):  # shapes only: no random init of weights about to be overwritten
        G = build_generator(arch)
    G = G.to_empty(device="cpu")
    check_state(state, _tensors(G), str(path))
    G.load_state_dict(state, strict=False)  # check_state made sure only the skipped counters are absent
    for key, buffer in G.named_buffers():  # BatchNorm keeps a counter absent from the file: restart it at 0
        if key.endswith(SKIPPED_SUFFIX):
            buffer.zero_()
    return G.eval(), info


def load_generator(path, map_location: str | torch.device = "cpu") -> SlimGenerator:
    """The generator saved at `path`, in eval mode on `map_location`."""
    return read_generator(path)[0].to(map_location)

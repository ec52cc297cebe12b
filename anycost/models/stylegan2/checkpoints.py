"""Load and save generators.

Two formats:

* **anycost** (ours): one ``.safetensors`` file; its header metadata holds the JSON architecture,
  the format version and free-form provenance. Tensors only, nothing executable.
* **official**: the checkpoints of the official Anycost GAN code and of the rosinality StyleGAN2
  port, a torch pickle holding ``{"g_ema": state_dict, ...}`` (a bare state dict is accepted too).
  They are read with ``torch.load(weights_only=True)`` (no arbitrary unpickling) and the
  architecture is inferred from the keys and shapes.

Every load checks every key and shape before touching a model, and fails with a `CheckpointError`
naming the bad key, so nothing is ever half-loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anycost.fileio import (
    CheckpointError,
    atomic_write,
    check_state,
    is_safetensors,
    read_safetensors,
    read_tagged_safetensors,
    read_torch_file,
    write_tagged_safetensors,
)
from anycost.models.stylegan2.arch import BASE_CHANNELS, GeneratorArch
from anycost.models.stylegan2.generator import Generator
from anycost.ops.ref import fir_kernel

FORMAT = "anycost-generator"
FORMAT_VERSION = 1


def _empty_generator(arch: GeneratorArch) -> Generator:
    """A generator with uninitialised CPU storage (no random init, no w_avg sampling) to load into."""
    with torch.device("meta"):
        G = Generator(arch=arch)
    return G.to_empty(device="cpu")


# -- official (rosinality / Anycost GAN) state dicts ----------------------------------------------
def _constant_buffers(arch: GeneratorArch) -> dict[str, torch.Tensor]:
    """The fixed FIR kernels the official files store as buffers (and we do not)."""
    kernel = fir_kernel(gain=4.0)
    n_blocks = (arch.n_styles - 2) // 2
    out = {f"convs.{2 * k}.conv.blur.kernel": kernel for k in range(n_blocks)}
    out.update({f"to_rgbs.{k}.upsample.kernel": kernel for k in range(n_blocks)})
    return out


def infer_arch(state: dict[str, torch.Tensor]) -> GeneratorArch:
    """Architecture of an official generator state dict, from its keys and shapes.

    The channel multiplier is read off the top resolution (as the official code does), the cap off
    the widest layer; every layer is then checked against ``min(cap, int(BASE[res] * multiplier))``.
    """
    for key in ("style.1.weight", "input.input", "to_rgb1.conv.weight"):
        if key not in state:
            raise CheckpointError(f"not a StyleGAN2 generator state dict: missing key {key!r}")
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in state:
        n_mlp += 1
    n_blocks = 0
    while f"to_rgbs.{n_blocks}.conv.weight" in state:
        n_blocks += 1
    resolution = 4 * 2**n_blocks
    if n_blocks == 0 or resolution > 1024:
        raise CheckpointError(f"unsupported generator: {n_blocks} upsampling blocks (need 1 to 8)")
    style_dim = state["style.1.weight"].shape[1]
    widths = {4: state["input.input"].shape[1]}
    for k in range(n_blocks):
        key = f"convs.{2 * k}.conv.weight"
        if key not in state:
            raise CheckpointError(f"missing key {key!r}")
        widths[8 * 2**k] = state[key].shape[1]
    multiplier = widths[resolution] / BASE_CHANNELS[resolution]
    if multiplier == int(multiplier):
        multiplier = int(multiplier)
    try:
        arch = GeneratorArch(resolution, multiplier, max(widths.values()), style_dim, n_mlp)
    except ValueError as err:
        raise CheckpointError(f"cannot infer the architecture: {err}") from None
    for res, width in widths.items():
        if arch.channels(res) != width:
            raise CheckpointError(
                f"non-standard channel layout: {width} channels at {res} px, expected {arch.channels(res)} "
                f"for channel_multiplier={multiplier}, channel_max={arch.channel_max}"
            )
    return arch


def generator_from_official_state(state: dict, source: str = "state dict") -> Generator:
    """Build a Generator from an official (rosinality / Anycost GAN) `g_ema` state dict."""
    arch = infer_arch(state)
    G = _empty_generator(arch)
    shapes = {k: v for k, v in G.state_dict().items() if k != "w_avg"}
    constants = _constant_buffers(arch)
    check_state(state, {**shapes, **constants}, source)
    for key, kernel in constants.items():
        if not torch.allclose(state[key].float(), kernel, atol=1e-6):
            raise CheckpointError(f"{source}: {key!r} is not the [1,3,3,1] FIR kernel this generator supports")
    G.load_state_dict({k: state[k] for k in shapes}, strict=False)
    G.update_w_avg()
    return G


def official_state(G: Generator) -> dict[str, torch.Tensor]:
    """`G`'s weights under the official keys (with the FIR buffers the official code expects)."""
    state = {k: v.detach().clone() for k, v in G.state_dict().items() if k != "w_avg"}
    state.update({k: v.to(G.w_avg.device) for k, v in _constant_buffers(G.arch).items()})
    return state


# -- files -----------------------------------------------------------------------------------------
def save_generator(G: Generator, path, metadata: dict | None = None) -> Path:
    """Save `G` in the anycost format (safetensors + JSON architecture); written atomically."""
    return write_tagged_safetensors(path, G.state_dict(), FORMAT, FORMAT_VERSION, metadata,
                                    arch=G.arch.to_dict())


def export_official(G: Generator, path) -> Path:
    """Write `G` as an official-style checkpoint ``{"g_ema": state_dict}`` (loadable by both codes)."""
    path = Path(path)
    state = {k: v.cpu() for k, v in official_state(G).items()}
    atomic_write(path, lambda tmp: torch.save({"g_ema": state}, tmp))
    return path


def _load_anycost(path: Path) -> tuple[Generator, dict]:
    meta, state = read_tagged_safetensors(path, FORMAT, FORMAT_VERSION, "generator")
    try:
        arch = GeneratorArch.from_dict(json.loads(meta["arch"]))
        info = json.loads(meta.get("info", "{}"))
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: bad architecture metadata ({err})") from None
    G = _empty_generator(arch)
    check_state(state, G.state_dict(), str(path))
    G.load_state_dict(state)
    return G, info


def _load_official(path: Path) -> Generator:
    data = read_torch_file(path, "checkpoint")
    if isinstance(data, dict) and "g_ema" in data:
        data = data["g_ema"]
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict with 'g_ema' or a state dict, got {type(data).__name__}")
    return generator_from_official_state(data, str(path))


def load_generator(path, map_location: str | torch.device = "cpu") -> Generator:
    """Load a generator from our safetensors format or an official ``.pt`` checkpoint (by content)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if is_safetensors(path):
        G, _ = _load_anycost(path)
    else:
        G = _load_official(path)
    return G.to(map_location).eval()


def read_metadata(path) -> dict:
    """The provenance dict saved with an anycost-format file."""
    meta, _ = read_safetensors(Path(path), tensors=False)
    try:
        return json.loads(meta.get("info", "{}"))
    except ValueError as err:
        raise CheckpointError(f"{path}: bad metadata ({err})") from None

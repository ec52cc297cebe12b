"""The generator bundled with the package (or a random-weight stand-in of its shape when none is bundled)."""

from __future__ import annotations

from pathlib import Path

import torch

from anycost import assets
from anycost.fileio import CheckpointError
from anycost.models.stylegan2.arch import GeneratorArch
from anycost.models.stylegan2.checkpoints import load_generator, read_metadata
from anycost.models.stylegan2.generator import Generator

#: File name of the bundled model inside `anycost/assets`.
BUNDLED_NAME = "emoji64.safetensors"
#: The bundled model's architecture (and `anycost train`'s default): 64 px, widths 128 (4-16 px), 64 (32 px),
#: 32 (64 px); ratio 0.25 gives 128/64/32/16/8. Small enough to train on a 2-core CPU in about three hours.
DEFAULT_ARCH = GeneratorArch(64, channel_multiplier=0.125, channel_max=128, style_dim=256, n_mlp=4)
#: The bundled model's training data (and `anycost train`'s default `--data`): the 893 emoji heads at 64 px.
DEFAULT_DATA = "emoji-heads"


def default_model_path() -> Path | None:
    """Path of the bundled trained model, or None when this build has none."""
    return assets.path(BUNDLED_NAME)


def default_generator(seed: int = 0) -> tuple[Generator, str]:
    """(generator, description): the bundled model, else a random-weight model of the same shape."""
    path = default_model_path()
    if path is not None:
        return load_generator(path), f"bundled model {path.name}"
    with torch.random.fork_rng():  # seeded init without touching the caller's global RNG
        torch.manual_seed(seed)
        G = Generator(arch=DEFAULT_ARCH).eval()
    return G, "RANDOM WEIGHTS (no trained model is bundled yet)"


def generator_or_default(checkpoint=None) -> tuple[Generator, str]:
    """(generator, description): the StyleGAN2 generator file `checkpoint` when given (any format
    `anycost.load_generator` reads: compressed ones too), else `default_generator()`."""
    if not checkpoint:
        return default_generator()
    from anycost.models.files import load_generator as load_any  # imported here: it imports this package

    G = load_any(checkpoint)
    if not isinstance(G, Generator):
        raise ValueError(f"{checkpoint} holds a {type(G).__name__}; this command runs StyleGAN2 (Anycost) generators")
    return G, f"checkpoint {checkpoint}"


def training_data(checkpoint=None) -> str:
    """The `--data` a generator file was trained on (from its metadata; `checkpoint` None: the bundled model):
    the real images that evaluation, encoder training and the encoder ablation compare it with. `DEFAULT_DATA`
    when the file does not say (official checkpoints, other formats, no bundled model)."""
    path = Path(checkpoint) if checkpoint else default_model_path()
    if path is None or path.suffix != ".safetensors":
        return DEFAULT_DATA
    try:
        config = read_metadata(path).get("train_config")
    except (CheckpointError, OSError):
        return DEFAULT_DATA
    return config.get("data", DEFAULT_DATA) if isinstance(config, dict) else DEFAULT_DATA

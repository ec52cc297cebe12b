"""Generator files of every family: `load_generator` reads the family from the file, `save_generator` from the
generator's class. Each family's own checkpoints module does the work (`FORMAT`, `save_generator`,
`load_generator`); official StyleGAN2 / Anycost GAN ``.pt`` files go to the StyleGAN2 family."""

from __future__ import annotations

from pathlib import Path

import torch

from anycost.fileio import CheckpointError, is_safetensors, read_safetensors
from anycost.models.i2i import checkpoints as i2i_files
from anycost.models.i2i.generator import I2IGenerator
from anycost.models.slimgan import checkpoints as slimgan_files
from anycost.models.slimgan.generators import SlimGenerator
from anycost.models.stylegan2 import checkpoints as stylegan2_files
from anycost.models.stylegan2.generator import Generator

#: The checkpoints module of each family, by the `format` its files carry in their metadata.
BY_FORMAT = {module.FORMAT: module for module in (stylegan2_files, slimgan_files, i2i_files)}
#: The same modules by the generator class they save, most derived classes first.
BY_CLASS = [(Generator, stylegan2_files), (SlimGenerator, slimgan_files), (I2IGenerator, i2i_files)]


def register(module, cls: type) -> None:
    """Let `load_generator` / `save_generator` reach a file format defined above this layer (a method's package,
    such as `anycost.compression`): `module` has ``FORMAT``, ``save_generator`` and ``load_generator``; `cls` is
    the generator class it saves, tried before the families' classes (it may derive from one of them)."""
    BY_FORMAT[module.FORMAT] = module
    BY_CLASS[:] = [(cls, module)] + [(c, m) for c, m in BY_CLASS if c is not cls]


def load_generator(path, map_location: str | torch.device = "cpu"):
    """The generator at `path`, of whichever family its file names (eval mode, on `map_location`): our
    ``.safetensors`` files of every family, or an official StyleGAN2 / Anycost GAN ``.pt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if not is_safetensors(path):
        return stylegan2_files.load_generator(path, map_location)
    fmt = read_safetensors(path, tensors=False)[0].get("format")
    if fmt not in BY_FORMAT:
        raise CheckpointError(f"{path}: not an anycost generator file (format={fmt!r}; this anycost reads "
                              f"{', '.join(sorted(BY_FORMAT))})")
    return BY_FORMAT[fmt].load_generator(path, map_location)


def save_generator(G, path, metadata: dict | None = None) -> Path:
    """Save `G` in its family's format (one safetensors file, written atomically)."""
    for cls, module in BY_CLASS:
        if isinstance(G, cls):
            return module.save_generator(G, path, metadata)
    raise TypeError(f"no file format for a {type(G).__name__}: expected one of "
                    f"{', '.join(cls.__name__ for cls, _ in BY_CLASS)}")

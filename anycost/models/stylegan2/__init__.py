"""The Anycost StyleGAN2 family: a generator with elastic resolution and channels, its discriminator.

- `arch`: `GeneratorArch` (what the weights look like) and the layer geometry;
- `config`: `SubnetConfig`, one sub-generator (resolution + per-layer widths), with `macs` its cost;
- `layers`, `generator`, `discriminator`, `channel_sort`: the modules (a config is passed to forward);
- `checkpoints`: our safetensors format and the official / rosinality `.pt` files;
- `official`: the official forward formulation, written independently (the tests' oracle, `anycost bench`'s
  baseline);
- `bundled`: the generator shipped in `anycost/assets`.
"""

from anycost.models.stylegan2.arch import UNIFORM_RATIOS, GeneratorArch, layer_resolution, n_layers
from anycost.models.stylegan2.bundled import DEFAULT_ARCH, DEFAULT_DATA, default_generator, generator_or_default
from anycost.models.stylegan2.channel_sort import sort_channels
from anycost.models.stylegan2.checkpoints import export_official, load_generator, read_metadata, save_generator
from anycost.models.stylegan2.config import SubnetConfig
from anycost.models.stylegan2.discriminator import Discriminator, arch_vector
from anycost.models.stylegan2.generator import Generator

__all__ = [
    "DEFAULT_ARCH",
    "DEFAULT_DATA",
    "UNIFORM_RATIOS",
    "Discriminator",
    "Generator",
    "GeneratorArch",
    "SubnetConfig",
    "arch_vector",
    "default_generator",
    "export_official",
    "generator_or_default",
    "layer_resolution",
    "load_generator",
    "n_layers",
    "read_metadata",
    "save_generator",
    "sort_channels",
]

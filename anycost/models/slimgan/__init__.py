"""SlimGAN (Hou et al., AAAI 2021): slimmable generators, one set of weights run at several widths.

- `arch`: `SlimArch` (backbone, channels, widths, classes) and its presets `resnet32` / `dcgan32`;
- `config`: `SlimConfig`, one width as a sub-network value (`anycost.subnet.SubnetLike`), `macs` its cost
  (formulas in `macs`);
- `layers`, `norms`: sliceable convs and linears (views of the full weights), switchable BN and the
  sliceable / switchable conditional BNs;
- `generators`: the DCGAN-style and SNGAN ResNet-style generators (``G(z, y=None, width=0.5)``);
- `discriminators`: SNGAN discriminators with projection, paired with the widths (shared first stages,
  independent, same, slimmable);
- `checkpoints`: one safetensors file per generator.
"""

from anycost.models.slimgan.arch import DEFAULT_WIDTHS, SlimArch
from anycost.models.slimgan.checkpoints import load_generator, read_generator, save_generator
from anycost.models.slimgan.config import SlimConfig
from anycost.models.slimgan.discriminators import SlimDiscriminator
from anycost.models.slimgan.generators import DCGANGenerator, ResNetGenerator, SlimGenerator, build_generator

__all__ = [
    "DEFAULT_WIDTHS",
    "DCGANGenerator",
    "ResNetGenerator",
    "SlimArch",
    "SlimConfig",
    "SlimDiscriminator",
    "SlimGenerator",
    "build_generator",
    "load_generator",
    "read_generator",
    "save_generator",
]

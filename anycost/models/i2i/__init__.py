"""The image-to-image family: the ResNet generator of pix2pix / CycleGAN and GAN Compression, as a supernet.

- `arch`: `I2IArch`, what the weights look like (per-layer widths, dense or separable residual blocks) and the
  input size MACs are counted at;
- `config`: `I2IConfig`, one sub-network (a width per layer), with `macs`, `paper_macs` and `params`;
- `macs`: the per-conv geometry (`conv_specs`) and both MAC conventions;
- `layers`, `generator`: the modules (a config is passed to forward) and `export` of a sub-network;
- `checkpoints`: our safetensors format.
"""

from anycost.models.i2i.arch import I2IArch
from anycost.models.i2i.checkpoints import load_generator, read_metadata, save_generator
from anycost.models.i2i.config import I2IConfig
from anycost.models.i2i.generator import I2IGenerator, export
from anycost.models.i2i.macs import ConvSpec, conv_specs, paper_macs, param_count, true_macs

__all__ = [
    "ConvSpec",
    "I2IArch",
    "I2IConfig",
    "I2IGenerator",
    "conv_specs",
    "export",
    "load_generator",
    "paper_macs",
    "param_count",
    "read_metadata",
    "save_generator",
    "true_macs",
]

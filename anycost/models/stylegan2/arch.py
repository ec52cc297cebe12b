"""The shape of a StyleGAN2 (config-e/f style) generator and the geometry of its layers.

`GeneratorArch` describes what the weights of one trained model look like. Layers are counted as in
the official Anycost GAN code: entry 0 is the constant input, entry 1 the output of ``conv1``, then
two entries per resolution from 8 px up (the upsampling conv and the regular conv of that block), so a
1024 px generator has 18 entries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

from anycost.jsonrecord import check_fields

#: Channels of the official code before the channel multiplier, per resolution.
BASE_CHANNELS = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
#: The channel ratios an Anycost GAN is trained with.
UNIFORM_RATIOS = (0.25, 0.5, 0.75, 1.0)
#: Smallest output resolution a sub-generator may stop at.
MIN_RESOLUTION = 8


def log2_int(value: int, what: str) -> int:
    """Exact base-2 logarithm of a power of two, or a ValueError naming `what`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two, got {value!r}")
    return value.bit_length() - 1


def n_layers(resolution: int) -> int:
    """Number of per-layer widths of a sub-generator at `resolution` (18 at 1024 px)."""
    return 2 * log2_int(resolution, "resolution") - 2


def layer_resolution(layer: int) -> int:
    """Spatial size of the feature map produced by width entry `layer`."""
    return 2 ** (layer // 2 + 2)


@dataclass(frozen=True)
class GeneratorArch:
    """Shape of a StyleGAN2 generator: what the weights of one trained model look like."""

    resolution: int
    channel_multiplier: float = 2
    channel_max: int = 512
    style_dim: int = 512
    n_mlp: int = 8
    lr_mlp: float = 0.01

    def __post_init__(self):
        log2_int(self.resolution, "resolution")
        if not 8 <= self.resolution <= 1024:
            raise ValueError(f"resolution must be between 8 and 1024, got {self.resolution}")
        if not self.channel_multiplier > 0:
            raise ValueError(f"channel_multiplier must be positive, got {self.channel_multiplier}")
        for name in ("channel_max", "style_dim", "n_mlp"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.channels(self.resolution) < 1:
            raise ValueError(f"channel_multiplier {self.channel_multiplier} leaves no channel at {self.resolution} px")

    def channels(self, res: int, ratio: float = 1.0) -> int:
        """Official width formula: ``min(channel_max, int(BASE[res] * ratio * multiplier))``."""
        return min(self.channel_max, int(BASE_CHANNELS[res] * ratio * self.channel_multiplier))

    @property
    def n_styles(self) -> int:
        """Number of W+ entries (18 at 1024 px)."""
        return n_layers(self.resolution)

    @property
    def n_noises(self) -> int:
        """Number of noise inputs (17 at 1024 px): conv1, then two per block."""
        return self.n_styles - 1

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Resolutions a sub-generator may output, smallest first."""
        return tuple(2**k for k in range(MIN_RESOLUTION.bit_length() - 1, self.resolution.bit_length()))

    @cached_property
    def full_widths(self) -> tuple[int, ...]:
        """Full width of every layer of the model."""
        return tuple(self.channels(layer_resolution(i)) for i in range(n_layers(self.resolution)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorArch:
        return cls(**check_fields(data, cls, "generator architecture"))

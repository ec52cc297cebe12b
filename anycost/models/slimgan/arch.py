"""`SlimArch`: what the weights of one slimmable generator look like, and the channels of each width.

A generator has a linear layer from the latent to a `bottom_width` x `bottom_width` map of `channels[0]`
channels, then one 2x upsampling stage per further entry of `channels`, then a 3x3 conv to the image. A
width w keeps the leading ``floor(w * c)`` channels of every hidden layer; the latent and the image keep
theirs. The presets are the SNGAN / Mimicry 32 px generators the SlimGAN paper trains.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from anycost.checks import check_int
from anycost.jsonrecord import check_fields

BACKBONES = ("dcgan", "resnet")
#: How class-conditional BNs handle widths: the paper's sliceable cBN ("+": one class table at full
#: width, prefix-sliced, times a private affine per width) or the naive one ("x": a class table per width).
CBN_KINDS = ("sliceable", "switchable")
#: The widths SlimGAN trains.
DEFAULT_WIDTHS = (0.25, 0.5, 0.75, 1.0)


def scaled(channels: int, width: float) -> int:
    """Leading channels a width keeps: ``floor(width * channels)`` (a tiny epsilon absorbs float error)."""
    return math.floor(width * channels + 1e-9)


@dataclass(frozen=True)
class SlimArch:
    """Shape of a slimmable generator: backbone, channels per stage at full width, widths and classes."""

    backbone: str
    channels: tuple[int, ...]
    z_dim: int = 128
    bottom_width: int = 4
    img_channels: int = 3
    num_classes: int = 0
    widths: tuple[float, ...] = DEFAULT_WIDTHS
    cbn: str = "sliceable"

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "widths", tuple(float(w) for w in self.widths))
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.cbn not in CBN_KINDS:
            raise ValueError(f"cbn must be one of {CBN_KINDS}, got {self.cbn!r}")
        if len(self.channels) < 2:
            raise ValueError(f"channels needs at least 2 stages (one upsampling), got {self.channels}")
        for name in ("z_dim", "bottom_width", "img_channels"):
            check_int(name, getattr(self, name), 1)
        check_int("num_classes", self.num_classes, 0)
        for c in self.channels:
            check_int("every entry of channels", c, 1)
        if not self.widths or list(self.widths) != sorted(set(self.widths)):
            raise ValueError(f"widths must be a non-empty, strictly increasing sequence, got {self.widths}")
        for w in self.widths:
            if not 0 < w <= 1:
                raise ValueError(f"every width must be in (0, 1], got {w}")
            if min(self.width_channels(w)) < 1:
                raise ValueError(f"width {w:g} leaves no channel in a layer of {self.channels}")

    # -- presets -------------------------------------------------------------------------------
    @classmethod
    def resnet32(cls, ngf: int = 256, **kw) -> SlimArch:
        """SNGAN's 32 px ResNet generator (Mimicry's SNGAN-32, `ngf` channels in every block)."""
        return cls("resnet", (ngf,) * 4, **kw)

    @classmethod
    def dcgan32(cls, ngf: int = 512, **kw) -> SlimArch:
        """SNGAN's 32 px standard-CNN (DCGAN) generator: `ngf` channels halved at every upsampling."""
        return cls("dcgan", (ngf, ngf // 2, ngf // 4, ngf // 8), **kw)

    # -- derived values ------------------------------------------------------------------------
    @property
    def resolution(self) -> int:
        return self.bottom_width * 2 ** (len(self.channels) - 1)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def width_channels(self, width: float) -> tuple[int, ...]:
        """Channels of every stage at `width` (no check that `width` is one of `widths`)."""
        return tuple(scaled(c, width) for c in self.channels)

    def width_index(self, width: float) -> int:
        """Position of `width` in `widths`; a one-line ValueError when it is not one of them."""
        if isinstance(width, bool) or not isinstance(width, (int, float)):
            raise TypeError(f"width must be a number or a SlimConfig, got {type(width).__name__}")
        for i, w in enumerate(self.widths):
            if abs(w - width) < 1e-9:
                return i
        raise ValueError(f"width {width!r} is not one of this generator's widths {self.widths}")

    def describe(self) -> str:
        cond = f"{self.num_classes} classes ({self.cbn} cBN)" if self.conditional else "unconditional"
        return f"{self.backbone} {self.resolution} px, channels {list(self.channels)}, {cond}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["channels"], data["widths"] = list(self.channels), list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SlimArch:
        check_fields(data, cls, "SlimArch")
        try:
            return cls(**data)
        except TypeError as err:  # a missing field
            raise ValueError(f"bad SlimArch: {err}") from None



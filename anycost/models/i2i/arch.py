"""The shape of a ResNet image-to-image generator (pix2pix / CycleGAN style) and the names of its layers.

The network, for an input of H x W px (H and W multiples of 4)::

    stem   c7s1-w0       reflection pad 3, 7x7 conv,               H   x W
    down1  d-w1          3x3 conv stride 2 (zero pad 1),           H/2 x W/2
    down2  d-w2          3x3 conv stride 2 (zero pad 1),           H/4 x W/4
    block k              residual block: trunk w2 -> inner -> w2,  H/4 x W/4
    up1    u-w(-2)       3x3 transposed conv stride 2,             H/2 x W/2
    up2    u-w(-1)       3x3 transposed conv stride 2,             H   x W
    head   c7s1-out      reflection pad 3, 7x7 conv, tanh,         H   x W

Every conv but the head is followed by an instance norm and a ReLU (the second conv of a residual block by the
norm only, before the skip add).

`I2IArch.widths` is one output width per layer, in that order: stem, down1, down2 (the width of the residual
trunk, shared by every block's output because of the skip adds), the inner width of each residual block (the
output of its first conv), up1, up2. The paper's generator with ``ngf`` is ``(ngf, 2ngf, 4ngf, 4ngf x N, 2ngf,
ngf)``; a sub-network (`I2IConfig`) or an exported one has any widths at most those, multiples of `step`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

from anycost.checks import check_int
from anycost.jsonrecord import check_fields

#: Layers before and after the residual blocks in `I2IArch.widths`.
HEAD_LAYERS = ("stem", "down1", "down2")
TAIL_LAYERS = ("up1", "up2")
#: The input size must be a multiple of this (two stride-2 convs, undone exactly by two transposed convs).
SIZE_MULTIPLE = 4
#: Smallest input side: the trunk (a quarter of it) must be at least 2 px for its reflection padding of 1.
MIN_SIZE = 8


def check_image_size(size, what: str = "image_size") -> int:
    check_int(what, size)
    if size % SIZE_MULTIPLE or size < MIN_SIZE:
        raise ValueError(f"{what} must be a multiple of {SIZE_MULTIPLE} and at least {MIN_SIZE}, got {size}")
    return size


@dataclass(frozen=True)
class I2IArch:
    """What the weights of one ResNet image-to-image generator look like, and the input size it is costed at.

    `widths`: one output width per layer (see the module docstring); `separable`: residual blocks made of
    depthwise 3x3 + pointwise 1x1 convs (the paper's "mobile" student blocks) instead of dense 3x3 convs;
    `image_size`: the square input size (px) that MAC counts refer to (the network itself runs at any size
    that is a multiple of 4); `step`: sub-network widths are multiples of it.
    """

    widths: tuple[int, ...]
    separable: bool = False
    image_size: int = 256
    in_channels: int = 3
    out_channels: int = 3
    step: int = 8

    def __post_init__(self):
        widths = tuple(self.widths)
        object.__setattr__(self, "widths", widths)
        if not isinstance(self.separable, bool):
            raise ValueError(f"separable must be a bool, got {self.separable!r}")
        check_image_size(self.image_size)
        for name in ("in_channels", "out_channels", "step"):
            check_int(name, getattr(self, name))
        if len(widths) < len(HEAD_LAYERS) + len(TAIL_LAYERS) + 1:
            raise ValueError(f"widths needs stem, down1, down2, at least one residual block, up1 and up2 "
                             f"({len(HEAD_LAYERS) + len(TAIL_LAYERS) + 1} or more values), got {len(widths)}")
        for name, width in zip(self.layer_names, widths):
            check_int(f"width of layer {name!r}", width)
            if width % self.step:
                raise ValueError(f"width of layer {name!r} must be a multiple of the step {self.step}, got {width}")

    @classmethod
    def resnet(cls, ngf: int = 64, n_blocks: int = 9, **kwargs) -> I2IArch:
        """The paper's generator: ``ngf`` filters after the stem, doubled by each downsampling conv."""
        check_int("ngf", ngf)
        check_int("n_blocks", n_blocks)
        return cls((ngf, 2 * ngf, 4 * ngf, *(4 * ngf,) * n_blocks, 2 * ngf, ngf), **kwargs)

    @property
    def n_blocks(self) -> int:
        return len(self.widths) - len(HEAD_LAYERS) - len(TAIL_LAYERS)

    @cached_property
    def layer_names(self) -> tuple[str, ...]:
        """The name of every entry of `widths`: stem, down1, down2, block0 ... block{N-1}, up1, up2."""
        blocks = tuple(f"block{k}" for k in range(len(self.widths) - len(HEAD_LAYERS) - len(TAIL_LAYERS)))
        return HEAD_LAYERS + blocks + TAIL_LAYERS

    @property
    def ngf(self) -> int | None:
        """The paper's ``ngf`` when the widths follow its pattern, else None."""
        return self.widths[0] if self == I2IArch.resnet(self.widths[0], self.n_blocks, **self._options()) else None

    def width_choices(self) -> tuple[tuple[int, ...], ...]:
        """The widths a sub-network may give every layer: the multiples of `step` up to the layer's width."""
        return tuple(tuple(range(self.step, w + 1, self.step)) for w in self.widths)

    def describe(self) -> str:
        kind = "separable" if self.separable else "dense"
        shape = f"ngf {self.ngf}" if self.ngf else "widths " + "/".join(map(str, self.widths))
        return f"ResNet {shape}, {self.n_blocks} {kind} blocks, {self.image_size} px"

    def _options(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "widths"}

    def to_dict(self) -> dict:
        return {**asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict) -> I2IArch:
        check_fields(data, cls, "I2IArch")
        if "widths" not in data or not isinstance(data["widths"], (list, tuple)):
            raise ValueError("I2IArch JSON needs a list of widths")
        return cls(**{**data, "widths": tuple(data["widths"])})

"""Slimmable generators: a DCGAN-style and an SNGAN ResNet-style one, one set of weights for every width.

The width is an argument of `forward` (a number of ``G.widths`` or a `SlimConfig`), never module state, so
two widths can run at once on one model. Each layer takes the leading channels of its weights (views);
each norm has private statistics per width (`norms`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from anycost.models.slimgan.arch import SlimArch, scaled
from anycost.models.slimgan.checks import check_classes, check_tensor
from anycost.models.slimgan.config import SlimConfig
from anycost.models.slimgan.layers import SlimConv2d, SlimConvTranspose2d, SlimLinear
from anycost.models.slimgan.norms import make_norm


class SlimGenerator(nn.Module):
    """What every slimmable generator shares: the arch, the width and input checks, the latent linear and
    the output conv. ``G(z, y=None, width=None)`` renders `z` [B, z_dim] (classes `y` [B] for a conditional
    model) at `width` (default: the widest) to images in [-1, 1]."""

    def __init__(self, arch: SlimArch):
        super().__init__()
        if not isinstance(arch, SlimArch):
            raise TypeError(f"arch must be a SlimArch, got {type(arch).__name__}")
        self.arch = arch
        self.l1 = SlimLinear(arch.z_dim, arch.bottom_width**2 * arch.channels[0])
        self.out = SlimConv2d(arch.channels[-1], arch.img_channels, 3)
        nn.init.xavier_uniform_(self.l1.weight)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.l1.bias)
        nn.init.zeros_(self.out.bias)

    # -- the public values -----------------------------------------------------------------------
    @property
    def widths(self) -> tuple[float, ...]:
        return self.arch.widths

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    @property
    def z_dim(self) -> int:
        return self.arch.z_dim

    def subnet(self, width: float | SlimConfig | None = None) -> SlimConfig:
        """The config of `width` (default: the widest), checked against this generator."""
        if width is None:
            return SlimConfig(self.arch, self.widths[-1])
        if isinstance(width, SlimConfig):
            if width.arch != self.arch:
                raise ValueError(f"the config is for another generator ({width.arch.describe()}), "
                                 f"not this one ({self.arch.describe()})")
            return width
        return SlimConfig(self.arch, width)

    def configs(self) -> tuple[SlimConfig, ...]:
        """One config per width, narrowest first."""
        return SlimConfig.all(self.arch)

    # -- forward ---------------------------------------------------------------------------------
    def forward(self, z: torch.Tensor, y: torch.Tensor | int | None = None,
                width: float | SlimConfig | None = None) -> torch.Tensor:
        config = self.subnet(width)
        check_tensor("z", z, (None, self.z_dim))
        y = check_classes(y, self.num_classes, z.shape[0], z.device, "generator")
        channels = config.channels
        h = self.l1(z, self.arch.bottom_width**2 * channels[0])
        h = h.view(z.shape[0], channels[0], self.arch.bottom_width, self.arch.bottom_width)
        h = self.body(h, config.index, channels, y)
        return torch.tanh(self.out(h))

    def body(self, h: torch.Tensor, index: int, channels: tuple[int, ...], y: torch.Tensor | None) -> torch.Tensor:
        """From the bottom map to the last feature map (normalised and activated), at width `index`."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.arch.describe()}, widths {list(self.widths)}"


def _norm(arch: SlimArch, channels: int, conditional: bool = True) -> nn.Module:
    """The norm of a layer of `channels` at full width: one set of statistics per width."""
    per_width = [scaled(channels, w) for w in arch.widths]
    return make_norm(per_width, arch.num_classes if conditional else 0, arch.cbn)


class DCGANGenerator(SlimGenerator):
    """SNGAN's standard-CNN generator: linear, then (BN, ReLU, 4x4 stride-2 transposed conv) per upsampling,
    then BN, ReLU, 3x3 conv, tanh. In the conditional model every BN is conditional."""

    def __init__(self, arch: SlimArch):
        super().__init__(arch)
        c = arch.channels
        self.norms = nn.ModuleList(_norm(arch, ch) for ch in c)
        self.ups = nn.ModuleList(SlimConvTranspose2d(c_in, c_out) for c_in, c_out in zip(c, c[1:]))
        for up in self.ups:
            nn.init.xavier_uniform_(up.weight)
            nn.init.zeros_(up.bias)

    def body(self, h, index, channels, y):
        for k, up in enumerate(self.ups):
            h = up(F.relu(self.norms[k](h, index, y)), channels[k + 1])
        return F.relu(self.norms[-1](h, index, y))


class GBlock(nn.Module):
    """SNGAN's generator block: BN, ReLU, 2x nearest upsampling, 3x3 conv, BN, ReLU, 3x3 conv, plus the
    upsampled input through a 1x1 conv. Both BNs are conditional in a conditional model."""

    def __init__(self, arch: SlimArch, c_in: int, c_out: int):
        super().__init__()
        self.b1 = _norm(arch, c_in)
        self.c1 = SlimConv2d(c_in, c_out, 3)
        self.b2 = _norm(arch, c_out)
        self.c2 = SlimConv2d(c_out, c_out, 3)
        self.c_sc = SlimConv2d(c_in, c_out, 1)
        for conv, gain in ((self.c1, math.sqrt(2)), (self.c2, math.sqrt(2)), (self.c_sc, 1.0)):
            nn.init.xavier_uniform_(conv.weight, gain)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, index: int, c_out: int, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.b1(x, index, y)), scale_factor=2, mode="nearest")
        h = self.c2(F.relu(self.b2(self.c1(h, c_out), index, y)), c_out)
        return h + self.c_sc(F.interpolate(x, scale_factor=2, mode="nearest"), c_out)


class ResNetGenerator(SlimGenerator):
    """SNGAN's ResNet generator: linear, one `GBlock` per upsampling, BN, ReLU, 3x3 conv, tanh. The final BN
    is unconditional, as in SNGAN / cGAN-pd."""

    def __init__(self, arch: SlimArch):
        super().__init__(arch)
        c = arch.channels
        self.blocks = nn.ModuleList(GBlock(arch, c_in, c_out) for c_in, c_out in zip(c, c[1:]))
        self.final_norm = _norm(arch, c[-1], conditional=False)

    def body(self, h, index, channels, y):
        for k, block in enumerate(self.blocks):
            h = block(h, index, channels[k + 1], y)
        return F.relu(self.final_norm(h, index))


def build_generator(arch: SlimArch) -> SlimGenerator:
    """The generator of `arch`'s backbone, freshly initialised."""
    if not isinstance(arch, SlimArch):
        raise TypeError(f"arch must be a SlimArch, got {type(arch).__name__}")
    return DCGANGenerator(arch) if arch.backbone == "dcgan" else ResNetGenerator(arch)

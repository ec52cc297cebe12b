"""Discriminators for a slimmable generator: SNGAN's ResNet and standard-CNN (DCGAN) ones with spectral norm,
a projection head for class-conditional models, and the ways SlimGAN pairs them with the generator's widths.

`SlimDiscriminator(arch, mode)` takes the generator's `SlimArch` and is called ``D(x, y=None, width=w)``:

- "shared" (SlimGAN): one full-width discriminator per width; the first `n_share` stages are one module
  that all of them share, the rest and the head are private;
- "independent": one discriminator per width, nothing shared (the same as "shared" with n_share 0);
- "same": one discriminator for every width;
- "slimmable": one discriminator whose width follows the generator's (the leading channels of its layers).

Spectral norm is computed on the full weights, which the slimmable mode then slices (as the authors' code
does: a slice of a normalised weight is not itself normalised).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from anycost.models.slimgan.arch import SlimArch, scaled
from anycost.models.slimgan.checks import check_classes, check_tensor
from anycost.models.slimgan.layers import SlimConv2d, SlimLinear

MODES = ("shared", "independent", "same", "slimmable")
#: SNGAN's discriminator widths at full size: 128 channels per ResNet block, 512 at the top of the standard CNN.
DEFAULT_NDF = {"resnet": 128, "dcgan": 512}


def sn_conv(c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int | None = None) -> SlimConv2d:
    conv = SlimConv2d(c_in, c_out, kernel_size, stride, padding)
    nn.init.xavier_uniform_(conv.weight)
    nn.init.zeros_(conv.bias)
    return spectral_norm(conv)


class DBlock(nn.Module):
    """SNGAN's discriminator block: (ReLU,) 3x3 conv, ReLU, 3x3 conv, optional 2x average pooling, plus a 1x1
    shortcut. The first block (`first`) has no leading ReLU and pools its input before the shortcut."""

    def __init__(self, c_in: int, c_out: int, downsample: bool, first: bool = False):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.c1 = sn_conv(c_in, c_out, 3)
        self.c2 = sn_conv(c_out, c_out, 3)
        self.c_sc = sn_conv(c_in, c_out, 1, padding=0)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        h = self.c2(F.relu(self.c1(x if self.first else F.relu(x), c_out)), c_out)
        if self.first:
            return F.avg_pool2d(h, 2) + self.c_sc(F.avg_pool2d(x, 2), c_out)
        sc = self.c_sc(x, c_out)
        return F.avg_pool2d(h, 2) + F.avg_pool2d(sc, 2) if self.downsample else h + sc


class ConvAct(nn.Module):
    """One layer of SNGAN's standard-CNN discriminator: a conv and a leaky ReLU (slope 0.1)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int):
        super().__init__()
        self.conv = sn_conv(c_in, c_out, kernel_size, stride, padding=1)

    def forward(self, x: torch.Tensor, c_out: int) -> torch.Tensor:
        return F.leaky_relu(self.conv(x, c_out), 0.1)


def stage_layout(arch: SlimArch, ndf: int) -> list[tuple[int, Callable[[int], nn.Module]]]:
    """(output channels, factory taking the input channels) of every stage of the discriminator."""
    if arch.backbone == "resnet":  # four blocks, the first two downsampling (8 x 8 at 32 px)
        return [(ndf, lambda c: DBlock(c, ndf, True, first=True)), (ndf, lambda c: DBlock(c, ndf, True)),
                (ndf, lambda c: DBlock(c, ndf, False)), (ndf, lambda c: DBlock(c, ndf, False))]
    chans = (ndf // 8, ndf // 4, ndf // 4, ndf // 2, ndf // 2, ndf, ndf)
    kernels = (3, 4, 3, 4, 3, 4, 3)  # the 4x4 layers halve the size (stride 2)
    return [(c_out, lambda c, c_out=c_out, k=k: ConvAct(c, c_out, k, 2 if k == 4 else 1))
            for c_out, k in zip(chans, kernels)]


class Head(nn.Module):
    """Features -> logit: ReLU and sum pooling (ResNet) or flattening (DCGAN), a linear layer, and for a
    conditional model the projection term ``<embed(y), features>``."""

    def __init__(self, backbone: str, features: int, num_classes: int):
        super().__init__()
        self.pool = backbone == "resnet"
        linear = SlimLinear(features, 1)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        self.linear = spectral_norm(linear)
        self.embed = None
        if num_classes:
            embed = nn.Embedding(num_classes, features)
            nn.init.xavier_uniform_(embed.weight)
            self.embed = spectral_norm(embed)

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.relu(h).sum(dim=(2, 3)) if self.pool else h.flatten(1)
        out = self.linear(h, 1).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed.weight[:, : h.shape[1]][y] * h).sum(dim=1)
        return out


class Branch(nn.Module):
    """The private part of one discriminator: its unshared stages and its head."""

    def __init__(self, stages: list[nn.Module], head: Head):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head


class SlimDiscriminator(nn.Module):
    """The discriminator(s) of a slimmable generator with `arch`, paired with its widths as `mode` says.

    `n_share` (mode "shared" only): how many leading stages all widths share, of 4 ResNet blocks or 7 CNN
    layers (default: half of them, rounded down). `ndf`: channels at full size (default: SNGAN's).
    """

    def __init__(self, arch: SlimArch, mode: str = "shared", n_share: int | None = None, ndf: int | None = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        ndf = DEFAULT_NDF[arch.backbone] if ndf is None else ndf
        if isinstance(ndf, bool) or not isinstance(ndf, int) or ndf < 8:
            raise ValueError(f"ndf must be an integer >= 8, got {ndf!r}")
        layout = stage_layout(arch, ndf)
        if n_share is not None and mode != "shared":
            raise ValueError(f"n_share applies to mode 'shared' only, not {mode!r}")
        n_share = {"shared": len(layout) // 2 if n_share is None else n_share, "independent": 0}.get(mode, len(layout))
        if isinstance(n_share, bool) or not isinstance(n_share, int) or not 0 <= n_share <= len(layout):
            raise ValueError(f"n_share must be an integer in [0, {len(layout)}], got {n_share!r}")
        self.arch, self.mode, self.n_share, self.ndf = arch, mode, n_share, ndf
        self.channels = tuple(c for c, _ in layout)
        if mode == "slimmable" and min(scaled(c, arch.widths[0]) for c in self.channels) < 1:
            raise ValueError(f"ndf {ndf} is too small for a slimmable discriminator: width {arch.widths[0]:g} "
                             f"leaves no channel in a layer of {list(self.channels)}")
        c_in = (arch.img_channels,) + self.channels[:-1]
        self.shared = nn.ModuleList(make(c) for (_, make), c in zip(layout[:n_share], c_in))
        n_branches = len(arch.widths) if mode in ("shared", "independent") else 1
        features = self.channels[-1] * (1 if arch.backbone == "resnet" else (arch.resolution // 8) ** 2)
        self.branches = nn.ModuleList(
            Branch([make(c) for (_, make), c in zip(layout[n_share:], c_in[n_share:])],
                   Head(arch.backbone, features, arch.num_classes))
            for _ in range(n_branches))

    def forward(self, x: torch.Tensor, y: torch.Tensor | int | None = None, width: float | None = None) -> torch.Tensor:
        """One logit per image of `x` [B, C, H, W] (classes `y` for a conditional model), judged by the
        discriminator of generator width `width` (default: the widest)."""
        width = getattr(width, "width", width)  # a SlimConfig
        index = len(self.arch.widths) - 1 if width is None else self.arch.width_index(width)
        res = self.arch.resolution
        check_tensor("x", x, (None, self.arch.img_channels, res, res))
        y = check_classes(y, self.arch.num_classes, x.shape[0], x.device, "discriminator")
        slim = self.arch.widths[index] if self.mode == "slimmable" else 1.0
        channels = [scaled(c, slim) for c in self.channels]
        branch = self.branches[index if len(self.branches) > 1 else 0]
        h = x
        for stage, c_out in zip([*self.shared, *branch.stages], channels):
            h = stage(h, c_out)
        return branch.head(h, y)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, n_share={self.n_share}, ndf={self.ndf}"

"""StyleGAN2 residual discriminator, multi-resolution and generator-conditioned (Anycost GAN).

* Multi-resolution: an image of any resolution r in 8..R enters through its own fromRGB layer at the
  block of resolution r (a "read-off" input), then runs the remaining blocks down to 4 px.
* Generator-conditioned: `arch_vector(config)` encodes which channel ratio each generator layer runs
  (one-hot of the 4 ratios per layer, zeros for layers above the config's resolution); a linear layer
  maps it to a per-channel scale and shift ``x * (1 + a) + b`` after each of the last two residual
  blocks. The layer starts at zero, so an unconditioned (stage 1-2) discriminator is unchanged when
  conditioning starts; without a vector the modulation is skipped.

Widths follow the generator's formula (`GeneratorArch.channels`), so D mirrors G.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from anycost import ops
from anycost.models.stylegan2.arch import UNIFORM_RATIOS, GeneratorArch, layer_resolution, n_layers
from anycost.models.stylegan2.config import SubnetConfig
from anycost.models.stylegan2.layers import EqualLinear

#: Channels of the minibatch standard-deviation feature, and its group size (as in StyleGAN2).
STDDEV_GROUP = 4


class EqualConv2d(nn.Module):
    """Conv with the equalised learning rate (runtime scale 1/sqrt(fan_in)); optional 2x blur-downsample."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None
        self.scale = 1 / math.sqrt(in_channel * kernel_size * kernel_size)
        self.downsample = downsample
        self.activate = activate
        self.register_buffer("blur_kernel", ops.fir_kernel(), persistent=False)

    def forward(self, x):
        k = self.weight.shape[-1]
        if self.downsample:  # blur then stride-2 conv: the [1,3,3,1] low-pass before decimation
            p = self.blur_kernel.shape[0] - 2 + k - 1
            x = ops.upfirdn2d(x, self.blur_kernel, pad=((p + 1) // 2, p // 2), impl="ref")
            out = F.conv2d(x, self.weight * self.scale, stride=2)
        else:
            out = F.conv2d(x, self.weight * self.scale, padding=k // 2)
        if self.activate:
            return ops.bias_act(out, self.bias, "lrelu", impl="ref")
        return out if self.bias is None else out + self.bias.reshape(1, -1, 1, 1)


class ResBlock(nn.Module):
    """3x3 conv, 3x3 blur-downsample conv, plus a 1x1 blur-downsample skip; sum scaled by 1/sqrt(2)."""

    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.conv1 = EqualConv2d(in_channel, in_channel, 3)
        self.conv2 = EqualConv2d(in_channel, out_channel, 3, downsample=True)
        self.skip = EqualConv2d(in_channel, out_channel, 1, downsample=True, bias=False, activate=False)

    def forward(self, x):
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group: int = STDDEV_GROUP) -> torch.Tensor:
    """Append the mean standard deviation over groups of samples as one extra feature map."""
    n, c, h, w = x.shape
    group = max(g for g in range(1, min(group, n) + 1) if n % g == 0)
    y = x.reshape(group, n // group, c, h, w)
    std = torch.sqrt(y.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # [n // group]
    std = std.reshape(1, -1, 1, 1, 1).expand(group, -1, 1, h, w).reshape(n, 1, h, w)
    return torch.cat([x, std], dim=1)


def arch_vector(config: SubnetConfig, max_layers: int | None = None) -> torch.Tensor:
    """One-hot of the channel ratio of every generator layer of `config` ([4 * layers] float).

    A width maps to the largest uniform ratio that gives exactly that width (capped layers are the
    same network at several ratios), else to the nearest ratio of width / full width. Layers above the
    config's resolution (up to `max_layers`, default the architecture's) stay zero.
    """
    arch = config.arch
    max_layers = n_layers(arch.resolution) if max_layers is None else max_layers
    out = torch.zeros(max_layers, len(UNIFORM_RATIOS))
    for i, width in enumerate(config.widths):
        res = layer_resolution(i)
        exact = [j for j, r in enumerate(UNIFORM_RATIOS) if arch.channels(res, r) == width]
        if exact:
            j = exact[-1]
        else:
            frac = width / arch.channels(res)
            j = min(range(len(UNIFORM_RATIOS)), key=lambda q: abs(UNIFORM_RATIOS[q] - frac))
        out[i, j] = 1
    return out.flatten()


class Discriminator(nn.Module):
    """Residual StyleGAN2 discriminator for a generator of architecture `arch`.

    ``D(images)`` scores a batch at any resolution in ``arch.resolutions``; ``D(images, arch)`` also
    conditions on per-sample generator configs encoded by `arch_vector` ([N, 4 * n_layers]).
    """

    def __init__(self, arch: GeneratorArch):
        super().__init__()
        self.arch = arch
        res_list = arch.resolutions  # 8 .. R
        self.from_rgbs = nn.ModuleDict({str(r): EqualConv2d(3, arch.channels(r), 1) for r in res_list})
        # blocks[str(r)] takes r px to r/2 px
        self.blocks = nn.ModuleDict({str(r): ResBlock(arch.channels(r), arch.channels(r // 2)) for r in res_list})
        c4 = arch.channels(4)
        self.final_conv = EqualConv2d(c4 + 1, c4, 3)
        self.final_linear = EqualLinear(c4 * 16, c4, activation="lrelu")
        self.final_out = EqualLinear(c4, 1)
        # per-channel (scale, shift) of the outputs of the last two blocks: 16->8 px, then 8->4 px
        self.cond_widths = (arch.channels(8), arch.channels(4))
        self.arch_dim = n_layers(arch.resolution) * len(UNIFORM_RATIOS)
        self.arch_embed = EqualLinear(self.arch_dim, 2 * sum(self.cond_widths))
        with torch.no_grad():
            self.arch_embed.weight.zero_()

    def arch_vector(self, configs) -> torch.Tensor:
        """[N, arch_dim] vectors for a list of `SubnetConfig` (one per sample)."""
        for c in configs:
            if c.arch != self.arch:
                raise ValueError(f"config is for {c.arch}, this discriminator is for {self.arch}")
        return torch.stack([arch_vector(c) for c in configs]).to(self.final_out.weight.device)

    def _modulations(self, vector: torch.Tensor):
        ab = self.arch_embed(vector)
        out, start = [], 0
        for c in self.cond_widths:
            a, b = ab[:, start:start + c], ab[:, start + c:start + 2 * c]
            out.append((a[:, :, None, None], b[:, :, None, None]))
            start += 2 * c
        return out

    def forward(self, images: torch.Tensor, arch: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [N, 1] for images [N, 3, r, r] (r in 8..R), optionally conditioned on `arch` [N, arch_dim]."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"images must be [N, 3, r, r], got {tuple(images.shape)}")
        res = images.shape[-1]
        if res not in self.arch.resolutions:
            raise ValueError(f"image resolution {res} not in this discriminator's {list(self.arch.resolutions)}")
        mods = None
        if arch is not None:
            if tuple(arch.shape) != (images.shape[0], self.arch_dim):
                raise ValueError(f"arch must be [{images.shape[0]}, {self.arch_dim}], got {tuple(arch.shape)}")
            mods = self._modulations(arch.to(images.dtype))
        x = self.from_rgbs[str(res)](images)
        r = res
        while r > 4:
            x = self.blocks[str(r)](x)
            if mods is not None and r in (16, 8):  # outputs of the last two blocks (16->8 and 8->4)
                a, b = mods[0] if r == 16 else mods[1]
                x = x * (1 + a) + b
            r //= 2
        x = self.final_conv(minibatch_stddev(x))
        return self.final_out(self.final_linear(x.flatten(1)))

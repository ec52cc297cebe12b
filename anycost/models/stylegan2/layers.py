"""Generator building blocks. Parameter names and shapes follow the official checkpoints exactly.

Layers take the channel widths to use as arguments (slices of their full weights: views, never
copies); they hold no per-call state.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from anycost import ops


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with the equalised learning rate: runtime scale lr_mul/sqrt(in)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: str = "linear"):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x, out_features: int | None = None, impl: str = "ref"):
        """`out_features` computes only the leading outputs (a sliced modulation). `impl` is the bias_act
        implementation; "ref" by default, as the native op has no double backward."""
        weight, bias = self.weight, self.bias
        if out_features is not None:
            weight, bias = weight[:out_features], bias[:out_features]
        if self.lr_mul != 1:
            bias = bias * self.lr_mul
        if self.activation == "linear" and x.dim() == 2:
            # One op that scales the product (no scaled copy of the weight): a forward makes one such call
            # per layer, and one op instead of three saved ~0.8 ms of a 256 px / ratio 0.25 preview (~62 ms).
            return torch.addmm(bias, x, weight.t(), alpha=self.scale)
        out = F.linear(x, weight) * self.scale
        return ops.bias_act(out, bias, self.activation, impl=impl)

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, act={self.activation}"


class ModulatedConv(nn.Module):
    """Weight [1, C_out, C_in, K, K] and its style modulation; the op itself lives in `anycost.ops`."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channel * kernel_size * kernel_size)

    def sliced(self, c_out: int, c_in: int):
        """The leading [c_out, c_in] block of the weight, as a view."""
        return self.weight[0, :c_out, :c_in]


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))


class StyledConv(nn.Module):
    """Modulated 3x3 conv (optionally 2x upsampling) + noise + bias + scaled leaky ReLU."""

    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv = ModulatedConv(in_channel, out_channel, 3, style_dim)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x, w, c_out: int, noise: torch.Tensor, impl: str = "auto", precision: str = "fp32",
                to_rgb: tuple | None = None):
        """The layer's output; with `to_rgb` = (the ToRGB layer after this plain conv, its w, its skip, keep_x):
        (x, rgb) with that ToRGB fused into this conv where `ops.fuses_to_rgb` says so (x None without keep_x:
        never written), else (x, None) and the caller runs the ToRGB."""
        c_in = x.shape[1]
        styles = self.conv.modulation(w, c_in, impl=impl)
        weight, bias = self.conv.sliced(c_out, c_in), self.activate.bias[:c_out]
        if to_rgb is not None and not self.upsample:
            layer, w_rgb, skip, keep_x = to_rgb
            rgb_weight, rgb_bias = layer.conv.sliced(3, c_out), layer.bias.reshape(3)
            if ops.fuses_to_rgb(impl, precision, keep_x, x, weight, styles, noise, self.noise.weight, bias, w_rgb,
                                rgb_weight, rgb_bias, skip):
                return ops.styled_conv_to_rgb(
                    x, weight, styles, weight_scale=self.conv.scale, noise=noise, noise_strength=self.noise.weight,
                    bias=bias, rgb_weight=rgb_weight, rgb_styles=layer.conv.modulation(w_rgb, c_out, impl=impl),
                    rgb_bias=rgb_bias, rgb_weight_scale=layer.conv.scale, skip=skip, keep_x=keep_x, impl=impl,
                    precision=precision)
        out = ops.modulated_conv2d(
            x, weight, styles, weight_scale=self.conv.scale, demodulate=True, upsample=self.upsample, noise=noise,
            noise_strength=self.noise.weight, bias=bias, activate=True, impl=impl, precision=precision,
        )
        return out if to_rgb is None else (out, None)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB without demodulation, plus bias, plus the upsampled skip image."""

    def __init__(self, in_channel: int, style_dim: int):
        super().__init__()
        self.conv = ModulatedConv(in_channel, 3, 1, style_dim)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, w, skip: torch.Tensor | None = None, impl: str = "auto", precision: str = "fp32"):
        c_in = x.shape[1]
        styles = self.conv.modulation(w, c_in, impl=impl)
        return ops.to_rgb(x, self.conv.sliced(3, c_in), styles, self.bias.reshape(3),
                          weight_scale=self.conv.scale, skip=skip, impl=impl, precision=precision)

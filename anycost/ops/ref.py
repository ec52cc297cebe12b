"""Pure-PyTorch reference implementation of every anycost op.

These are the definitions the native kernels are tested against, written for clarity and
autograd (they follow the official StyleGAN2 formulas: per-sample modulated weights, grouped
convolutions, a transposed conv followed by the FIR blur). Signatures match `anycost.ops`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMOD_EPS = 1e-8


def fir_kernel(taps=(1.0, 3.0, 3.0, 1.0), gain: float = 1.0, device=None, dtype=torch.float32) -> torch.Tensor:
    """2-D FIR kernel: the outer product of `taps`, normalised to sum to `gain`."""
    k = torch.tensor(taps, dtype=torch.float64)
    k = torch.outer(k, k)
    return (k * (gain / k.sum())).to(device=device, dtype=dtype)


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0, 0, 0)) -> torch.Tensor:
    """Upsample (zero insertion), pad (negative crops), FIR-filter (true convolution), downsample.

    `x` is [N, C, H, W]; `kernel` [kh, kw]; `pad` = (x0, x1, y0, y1) or (p0, p1) for both axes.
    """
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x0, x1, y0, y1 = pad
    x = F.pad(x, (max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)))
    x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    weight = torch.flip(kernel, (0, 1)).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down]


def bias_act(x: torch.Tensor, bias: torch.Tensor | None = None, act: str = "linear",
             alpha: float = LRELU_SLOPE, gain: float | None = None) -> torch.Tensor:
    """Add a per-channel bias (dim 1), then 'linear' or 'lrelu' (slope `alpha`) times `gain`.

    The default gain is 1 for 'linear' and sqrt(2) for 'lrelu'.
    """
    if bias is not None:
        x = x + bias.reshape((1, -1) + (1,) * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, alpha)
        gain = LRELU_GAIN if gain is None else gain
    elif act != "linear":
        raise ValueError(f"unknown activation {act!r}: use 'linear' or 'lrelu'")
    return x if gain is None or gain == 1 else x * gain


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, weight_scale: float,
                     demodulate: bool = True, upsample: bool = False, noise: torch.Tensor | None = None,
                     noise_strength: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                     activate: bool = False) -> torch.Tensor:
    """Styled (modulated) convolution on the given, possibly sliced, channels.

    x [N, C_in, H, W]; weight [C_out, C_in, K, K] (a view of the full weight); styles [N, C_in];
    `weight_scale` is 1/sqrt(fan-in of the FULL layer). With `upsample` the output is 2H x 2W (a
    stride-2 transposed conv, then the [1,3,3,1] blur with padding 1). Then noise * noise_strength
    (noise [N or 1, 1, H_out, W_out]) and, when `activate`, the scaled leaky ReLU with `bias`; a bias
    without activation is just added.
    """
    # Modulation scales the input channels and demodulation the output channels, which equals convolving each
    # sample with its own modulated weight (the official grouped formulation) but runs one ordinary conv over
    # the batch with the shared weight: much faster forward and backward on the CPU than a grouped conv.
    c_out, _, k, _ = weight.shape
    wgt = weight * weight_scale
    x = x * styles.reshape(*styles.shape, 1, 1).to(x.dtype)
    if upsample:
        out = F.conv_transpose2d(x, wgt.transpose(0, 1), stride=2)
        out = upfirdn2d(out, fir_kernel(gain=4.0, device=x.device), pad=(1, 1))
    else:
        out = F.conv2d(x, wgt, padding=k // 2)
    if demodulate:  # 1 / |w[o] * s|: sum_i s_i^2 sum_k w[o, i, k]^2, per sample and output channel
        demod = torch.rsqrt(styles.square() @ wgt.square().sum((2, 3)).T + DEMOD_EPS)
        out = out * demod.reshape(*demod.shape, 1, 1).to(out.dtype)
    if noise is not None:
        out = out + noise_strength * noise
    if activate:
        return bias_act(out, bias, "lrelu")
    return bias_act(out, bias)


def to_rgb(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor, *, weight_scale: float,
           skip: torch.Tensor | None = None) -> torch.Tensor:
    """ToRGB: 1x1 modulated conv without demodulation, plus bias, plus the 2x-upsampled `skip` image."""
    out = modulated_conv2d(x, weight, styles, weight_scale=weight_scale, demodulate=False, bias=bias.reshape(-1))
    if skip is not None:
        out = out + upfirdn2d(skip, fir_kernel(gain=4.0, device=skip.device), up=2, pad=(2, 1))
    return out

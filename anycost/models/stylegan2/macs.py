"""Multiply-accumulate counts of one image (batch 1) through a sub-generator.

Two counts, both exact for the layer widths of a sub-generator (`SubnetConfig.widths`):

* `true_macs`: the arithmetic the model needs: mapping and modulation linears (only the modulation
  outputs a layer uses), 3x3 convs, stride-2 transposed convs at their *input* size, the 4x4 FIR blur
  after each of them, the 1x1 ToRGB convs and the 4x4 FIR upsampling of every skip image. This is the
  figure GFLOP/s are computed from (2 x MACs / time): 75.4 G for config-f at 1024 px.
* `paper_macs`: what the Anycost GAN paper reports (144 G for the same model): its profiler traces the
  official code and counts every traced ``mul`` by its output size, transposed convs at their
  (2H+1)^2 output size, the modulation linears at full width, and the blur / zero-insertion upsample
  of its PyTorch fallback ops as depthwise convs. Use it only to compare with the paper's tables.
"""

from __future__ import annotations

from collections.abc import Sequence

from anycost.models.stylegan2.arch import GeneratorArch, layer_resolution

BLUR_TAPS = 16  # the 4x4 [1,3,3,1] FIR filter
RGB = 3


def _blocks(w: Sequence[int]):
    """Yield (resolution, input width, upconv width, conv width) for every block above 4 px."""
    for k in range((len(w) - 2) // 2):
        yield layer_resolution(2 + 2 * k), w[1 + 2 * k], w[2 + 2 * k], w[3 + 2 * k]


def modconv_macs(c_in: int, c_out: int, size_in: int, upsample: bool = False) -> int:
    """One modulated 3x3 conv op: the conv at its input size, plus the 4x4 blur after a 2x upsampling one."""
    conv = size_in * size_in * c_in * c_out * 9
    return conv + ((2 * size_in) ** 2 * c_out * BLUR_TAPS if upsample else 0)


def styled_conv_macs(style_dim: int, c_in: int, c_out: int, size_in: int, upsample: bool = False) -> int:
    """One StyledConv layer: its modulation linear (the c_in outputs it uses) and its conv."""
    return style_dim * c_in + modconv_macs(c_in, c_out, size_in, upsample)


def to_rgb_macs(style_dim: int, c_in: int, size: int) -> int:
    """One ToRGB layer at `size` px: modulation linear, 1x1 conv, and above 4 px the FIR upsampling of the skip."""
    return style_dim * c_in + size * size * RGB * c_in + (size * size * RGB * BLUR_TAPS if size > 4 else 0)


def true_macs(arch: GeneratorArch, w: Sequence[int]) -> int:
    sd = arch.style_dim
    total = arch.n_mlp * sd * sd  # mapping network
    total += styled_conv_macs(sd, w[0], w[1], 4) + to_rgb_macs(sd, w[1], 4)
    for res, c_prev, c_up, c_out in _blocks(w):
        total += styled_conv_macs(sd, c_prev, c_up, res // 2, upsample=True)
        total += styled_conv_macs(sd, c_up, c_out, res) + to_rgb_macs(sd, c_out, res)
    return total


def paper_macs(arch: GeneratorArch, w: Sequence[int]) -> int:
    sd = arch.style_dim
    full = arch.full_widths

    def modulation(c_in_full):  # weight * scale, linear, bias * lr_mul (all at the full width)
        return 2 * sd * c_in_full + c_in_full

    def weight_muls(c_out, c_in, k, demod):  # scale * weight * style (+ weight * rsqrt(...) with demod)
        return (3 if demod else 2) * c_out * c_in * k * k

    def activation(hw, c):  # noise * strength (one channel), scale * leaky_relu(...)
        return hw + hw * c

    total = arch.n_mlp * (2 * sd * sd + 2 * sd) + sd + 1  # mapping: 8 EqualLinear + PixelNorm
    total += modulation(full[0]) + weight_muls(w[1], w[0], 3, True) + 16 * w[1] * w[0] * 9 + activation(16, w[1])
    total += modulation(full[1]) + weight_muls(RGB, w[1], 1, False) + 16 * RGB * w[1]
    for k, (res, c_prev, c_up, c_out) in enumerate(_blocks(w)):
        hw = res * res
        total += modulation(full[1 + 2 * k]) + weight_muls(c_up, c_prev, 3, True)
        total += (res + 1) ** 2 * c_up * c_prev * 9 + hw * c_up * BLUR_TAPS + activation(hw, c_up)
        total += modulation(full[2 + 2 * k]) + weight_muls(c_out, c_up, 3, True) + hw * c_out * c_up * 9
        total += activation(hw, c_out)
        total += modulation(full[3 + 2 * k]) + weight_muls(RGB, c_out, 1, False) + hw * RGB * c_out
        total += hw * RGB * 4 + hw * RGB * BLUR_TAPS  # skip upsample: zero insertion + FIR
    return total

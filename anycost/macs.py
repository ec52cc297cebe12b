"""Multiply-accumulate counts of one image (batch 1) through a sub-generator.

Two counts, both exact for the layer widths of a `SubnetConfig`:

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

from anycost.config import SubnetConfig, layer_resolution

BLUR_TAPS = 16  # the 4x4 [1,3,3,1] FIR filter
RGB = 3


def _blocks(config: SubnetConfig):
    """Yield (resolution, input width, upconv width, conv width) for every block above 4 px."""
    w = config.widths
    for k in range((len(w) - 2) // 2):
        yield layer_resolution(2 + 2 * k), w[1 + 2 * k], w[2 + 2 * k], w[3 + 2 * k]


def true_macs(config: SubnetConfig) -> int:
    arch, w = config.arch, config.widths
    sd = arch.style_dim
    total = arch.n_mlp * sd * sd  # mapping network
    c_in, c = w[0], w[1]
    total += sd * c_in + 16 * c * c_in * 9  # conv1: modulation + 3x3 conv at 4 px
    total += sd * c + 16 * RGB * c  # to_rgb1
    for res, c_prev, c_up, c_out in _blocks(config):
        half = res // 2
        total += sd * c_prev + half * half * c_prev * c_up * 9 + res * res * c_up * BLUR_TAPS  # upconv + blur
        total += sd * c_up + res * res * c_up * c_out * 9  # conv
        total += sd * c_out + res * res * RGB * c_out + res * res * RGB * BLUR_TAPS  # to_rgb + skip upsample
    return total


def paper_macs(config: SubnetConfig) -> int:
    arch, w = config.arch, config.widths
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
    for k, (res, c_prev, c_up, c_out) in enumerate(_blocks(config)):
        hw = res * res
        total += modulation(full[1 + 2 * k]) + weight_muls(c_up, c_prev, 3, True)
        total += (res + 1) ** 2 * c_up * c_prev * 9 + hw * c_up * BLUR_TAPS + activation(hw, c_up)
        total += modulation(full[2 + 2 * k]) + weight_muls(c_out, c_up, 3, True) + hw * c_out * c_up * 9
        total += activation(hw, c_out)
        total += modulation(full[3 + 2 * k]) + weight_muls(RGB, c_out, 1, False) + hw * RGB * c_out
        total += hw * RGB * 4 + hw * RGB * BLUR_TAPS  # skip upsample: zero insertion + FIR
    return total

"""Multiply-accumulates of one sample through a slimmable generator at one width.

The count is what a dense implementation multiplies, the convention of `torch.utils.flop_counter` (its FLOPs
are 2 x these MACs): the latent linear, every conv at its output size (zero padding included), every
transposed conv at its input size (each input pixel meets every tap). Bias additions, batch norm (its
affine and the class-conditional scale) and activations are elementwise and not counted.
"""

from __future__ import annotations

from anycost.models.slimgan.arch import SlimArch

K3 = 9  # taps of a 3x3 conv
K4 = 16  # taps of the 4x4 stride-2 transposed conv of the DCGAN generator


def linear_macs(arch: SlimArch, c: tuple[int, ...]) -> int:
    """The latent linear to the bottom map of c[0] channels."""
    return arch.z_dim * arch.bottom_width**2 * c[0]


def dcgan_macs(arch: SlimArch, c: tuple[int, ...]) -> int:
    """Linear, one 4x4 stride-2 transposed conv per upsampling (at its input size), the 3x3 conv to the image."""
    total = linear_macs(arch, c)
    size = arch.bottom_width
    for c_in, c_out in zip(c, c[1:]):
        total += size * size * c_in * c_out * K4
        size *= 2
    return total + size * size * c[-1] * arch.img_channels * K3


def resnet_macs(arch: SlimArch, c: tuple[int, ...]) -> int:
    """Linear; per up-block, after the 2x upsampling, two 3x3 convs and the 1x1 shortcut; the 3x3 conv to the
    image."""
    total = linear_macs(arch, c)
    size = arch.bottom_width
    for c_in, c_out in zip(c, c[1:]):
        size *= 2
        total += size * size * (c_in * c_out * K3 + c_out * c_out * K3 + c_in * c_out)
    return total + size * size * c[-1] * arch.img_channels * K3


def generator_macs(arch: SlimArch, width: float) -> int:
    channels = arch.width_channels(width)
    return dcgan_macs(arch, channels) if arch.backbone == "dcgan" else resnet_macs(arch, channels)

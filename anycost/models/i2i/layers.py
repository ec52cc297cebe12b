"""The generator's convs, each holding its full-width weights and running on their LEADING channels.

A layer's input width is that of the tensor it gets, its output width an argument: the weights used are
slices ``weight[:c_out, :c_in]`` (views of the parameters, never copies), so a sub-network shares the
supernet's weights and trains them. Layers keep no per-call state.

Weights start as in pix2pix / CycleGAN: normal with standard deviation 0.02, biases zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from anycost import ops

INIT_STD = 0.02


def instance_norm(x: torch.Tensor) -> torch.Tensor:
    """Instance norm without affine parameters or running statistics (pix2pix / CycleGAN's "instance"): it
    normalises each channel of each image on its own, so a sub-network computes exactly what its exported
    copy computes, and no statistics need re-estimating for a sub-network."""
    return F.instance_norm(x, eps=1e-5)


def _weight(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * INIT_STD)


def _leading(t: torch.Tensor, *sizes: int) -> torch.Tensor:
    """t[:sizes[0], :sizes[1], ...]: `t` itself when that is all of it (a plain network's every call, where the
    slicing would be a few aten calls per layer for nothing)."""
    if t.shape[:len(sizes)] == sizes:
        return t
    return t[tuple(slice(n) for n in sizes)]


class SlicedConv2d(nn.Module):
    """A k x k conv (stride 1 or 2) with bias; `reflect` pads by reflection (else zeros), k // 2 each side. With
    `normalize` the instance norm that follows it is fused in, with `relu` then a ReLU (`anycost.ops.small_conv2d`:
    the native kernel at inference for the 7x7 stem and head, the reference otherwise)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, reflect: bool = False):
        super().__init__()
        self.weight = _weight(c_out, c_in, kernel, kernel)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.stride, self.reflect = stride, reflect

    def forward(self, x: torch.Tensor, c_out: int, normalize: bool = False, relu: bool = False) -> torch.Tensor:
        return ops.small_conv2d(x, _leading(self.weight, c_out, x.shape[1]), _leading(self.bias, c_out),
                                stride=self.stride, reflect=self.reflect, normalize=normalize, relu=relu)

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight.shape
        return f"{c_in}, {c_out}, kernel={k}, stride={self.stride}, reflect={self.reflect}"


class SlicedDepthwiseConv2d(nn.Module):
    """A depthwise 3x3 conv with bias and reflection padding; its width is that of its input. With `normalize`
    the instance norm that follows it in a separable conv is fused in (`anycost.ops.depthwise_conv3x3`: the
    native kernel at inference, the reference where a gradient is needed)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = _weight(channels, 1, 3, 3)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        c = x.shape[1]
        return ops.depthwise_conv3x3(x, _leading(self.weight, c), _leading(self.bias, c), reflect=True,
                                     normalize=normalize)


class SlicedPointwiseConv2d(nn.Module):
    """A 1x1 conv with bias; with `normalize` (and `relu`) the instance norm (and ReLU) that follows it in a
    residual block is fused in (`anycost.ops.pointwise_conv`: the native kernel at inference, the reference where
    a gradient is needed)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.weight = _weight(c_out, c_in, 1, 1)
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, c_out: int, normalize: bool = False, relu: bool = False) -> torch.Tensor:
        return ops.pointwise_conv(x, _leading(self.weight, c_out, x.shape[1]), _leading(self.bias, c_out),
                                  normalize=normalize, relu=relu)


class SeparableConv(nn.Module):
    """The paper's "mobile" 3x3 conv: depthwise 3x3, instance norm, pointwise 1x1 to `c_out` channels; with
    `normalize` / `relu` the norm and ReLU that follow it in a residual block too (each half one fused call)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.dw = SlicedDepthwiseConv2d(c_in)
        self.pw = SlicedPointwiseConv2d(c_in, c_out)

    def forward(self, x: torch.Tensor, c_out: int, normalize: bool = False, relu: bool = False) -> torch.Tensor:
        return self.pw(self.dw(x, normalize=True), c_out, normalize, relu)


class SlicedConvTranspose2d(nn.Module):
    """A 3x3 transposed conv of stride 2 with bias (padding 1, output padding 1): exactly doubles the size. With
    `normalize` the instance norm that follows it is fused in, with `relu` then a ReLU
    (`anycost.ops.small_conv_transpose2d`: the native kernel at inference, the reference where a gradient is
    needed)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.weight = _weight(c_in, c_out, 3, 3)  # torch's layout: input channels first
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor, c_out: int, normalize: bool = False, relu: bool = False) -> torch.Tensor:
        return ops.small_conv_transpose2d(x, _leading(self.weight, x.shape[1], c_out), _leading(self.bias, c_out),
                                          normalize=normalize, relu=relu)


class ResidualBlock(nn.Module):
    """x + norm(conv2(relu(norm(conv1(x))))): trunk -> `inner` -> trunk channels, the convs 3x3 with
    reflection padding, dense or separable (depthwise + pointwise). No dropout (the paper's ResNet
    generators train without it)."""

    def __init__(self, trunk: int, inner: int, separable: bool):
        super().__init__()
        if separable:
            self.conv1, self.conv2 = SeparableConv(trunk, inner), SeparableConv(inner, trunk)
        else:
            self.conv1 = SlicedConv2d(trunk, inner, 3, reflect=True)
            self.conv2 = SlicedConv2d(inner, trunk, 3, reflect=True)

    def forward(self, x: torch.Tensor, inner: int) -> torch.Tensor:
        h = _conv_norm(self.conv1, x, inner, relu=True)
        return x + _conv_norm(self.conv2, h, x.shape[1], relu=False)


def _conv_norm(conv: nn.Module, x: torch.Tensor, c_out: int, relu: bool) -> torch.Tensor:
    """instance_norm(conv(x)), then a ReLU if `relu`: one call, which fuses them where a kernel does."""
    return conv(x, c_out, normalize=True, relu=relu)

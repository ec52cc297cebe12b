"""Sliceable layers: each stores its weights at full width, and a call uses the leading block of them.

`sliced(c_out, c_in)` returns that block as views of the stored tensors (never copies), so every width
trains the same weights. The input width is read off the input tensor; the output width is an argument.
No layer keeps per-call state: any number of widths can run on one module at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SlimLinear(nn.Linear):
    """A linear layer whose call computes only the leading `out_features` outputs of the leading inputs."""

    def sliced(self, c_out: int, c_in: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.weight[:c_out, :c_in], None if self.bias is None else self.bias[:c_out]

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        return F.linear(x, *self.sliced(self.out_features if c_out is None else c_out, x.shape[1]))


class SlimConv2d(nn.Conv2d):
    """A conv over the leading input channels, to `c_out` outputs ("same" padding by default for odd kernels)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int = 1, padding: int | None = None,
                 bias: bool = True):
        super().__init__(c_in, c_out, kernel_size, stride, kernel_size // 2 if padding is None else padding,
                         bias=bias)

    def sliced(self, c_out: int, c_in: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.weight[:c_out, :c_in], None if self.bias is None else self.bias[:c_out]

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        weight, bias = self.sliced(self.out_channels if c_out is None else c_out, x.shape[1])
        return F.conv2d(x, weight, bias, self.stride, self.padding)


class SlimConvTranspose2d(nn.ConvTranspose2d):
    """The DCGAN 4x4 stride-2 transposed conv (2x upsampling) over the leading channels.

    Its weight is laid out [C_in, C_out, k, k], so the slice is ``weight[:c_in, :c_out]``.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 4, stride=2, padding=1)

    def sliced(self, c_out: int, c_in: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.weight[:c_in, :c_out], self.bias[:c_out]

    def forward(self, x: torch.Tensor, c_out: int | None = None) -> torch.Tensor:
        weight, bias = self.sliced(self.out_channels if c_out is None else c_out, x.shape[1])
        return F.conv_transpose2d(x, weight, bias, stride=2, padding=1)

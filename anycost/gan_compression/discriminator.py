"""The PatchGAN discriminator of pix2pix, scaled to small images.

pix2pix's "70 x 70" PatchGAN: 4 x 4 convs, `n_layers` of stride 2 (widths ndf, 2 ndf, 4 ndf, ... at most 8 ndf),
one of stride 1, then a stride-1 conv to one logit per patch; leaky ReLU 0.2 after each, instance norm after all
but the first. Each logit sees a `receptive_field(n_layers)` px patch (16, 34, 70 for 1, 2, 3 layers). The paper's
70 px patch covers 70/256 of a 256 px image's side; `layers_for_size` keeps that share at other sizes (the fewest
layers whose patch covers it): 1 layer (16 px patches, 14 x 14 logits) at 32 px, 2 at 64, 3 at 256.

It is conditional, as pix2pix's: it judges the input and the output together (channels concatenated).
"""

from __future__ import annotations

import torch
from torch import nn

from anycost.models.i2i.layers import INIT_STD, instance_norm

KERNEL = 4
#: The share of the image side the paper's 70 px patch covers at 256 px.
PATCH_SHARE = 70 / 256


def receptive_field(n_layers: int) -> int:
    """The side (px) of the input patch one logit sees."""
    field = 1
    for stride in [1, 1] + [2] * n_layers:  # from the logit back to the input
        field = (field - 1) * stride + KERNEL
    return field


def layers_for_size(size: int) -> int:
    """The fewest stride-2 layers whose patch covers `PATCH_SHARE` of a `size` px image."""
    n = 1
    while receptive_field(n) < PATCH_SHARE * size:
        n += 1
    return n


class PatchDiscriminator(nn.Module):
    """PatchGAN on [N, in_channels, H, W] -> logits [N, 1, h, w], one per patch (raw: the loss decides)."""

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("ndf", ndf), ("n_layers", n_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.in_channels, self.ndf, self.n_layers = in_channels, ndf, n_layers
        widths = [in_channels] + [ndf * min(2**k, 8) for k in range(n_layers + 1)]
        strides = [2] * n_layers + [1]
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, KERNEL, stride, padding=1)
                                   for c_in, c_out, stride in zip(widths, widths[1:], strides))
        self.head = nn.Conv2d(widths[-1], 1, KERNEL, 1, padding=1)
        for conv in [*self.convs, self.head]:
            nn.init.normal_(conv.weight, 0.0, INIT_STD)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"the discriminator takes [N, {self.in_channels}, H, W], got {tuple(x.shape)}")
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = torch.nn.functional.leaky_relu(x if i == 0 else instance_norm(x), 0.2)
        return self.head(x)

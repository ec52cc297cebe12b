"""Sort a generator's channels by importance so that the leading channels matter most.

Importance of input channel j of a modulated layer = sum |W[:, j]| x mean |style_j| over many w.
Walking from the last ToRGB backwards, each layer's inputs are sorted by importance and the layer that
produces them has its outputs permuted the same way, so the full generator computes exactly the same
function while every sub-generator (a prefix of the channels) keeps the most important ones.
"""

from __future__ import annotations

import torch

from anycost.models.stylegan2.layers import ModulatedConv, StyledConv


def _input_order(conv: ModulatedConv, w: torch.Tensor) -> torch.Tensor:
    importance = conv.weight.abs().sum(dim=(0, 1, 3, 4)) * conv.modulation(w).abs().mean(0)
    return torch.argsort(importance, descending=True)


def _permute_inputs(conv: ModulatedConv, order: torch.Tensor) -> None:
    conv.weight.copy_(conv.weight[:, :, order])
    conv.modulation.weight.copy_(conv.modulation.weight[order])
    conv.modulation.bias.copy_(conv.modulation.bias[order])


def _permute_outputs(layer: StyledConv, order: torch.Tensor) -> None:
    layer.conv.weight.copy_(layer.conv.weight[:, order])
    layer.activate.bias.copy_(layer.activate.bias[order])


@torch.no_grad()
def sort_channels(G, n_samples: int = 10000, seed: int = 0):
    """Permute `G`'s channels in place by importance (see the module docstring); returns `G`."""
    rng = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(n_samples, G.arch.style_dim, generator=rng).to(G.w_avg.device, G.w_avg.dtype)
    w = G.mapping(z)
    order = None
    blocks = list(zip(G.convs[0::2], G.convs[1::2], G.to_rgbs))
    for up_conv, conv, to_rgb in reversed(blocks):
        if order is None:  # the last block: its ToRGB decides the order of its input
            order = _input_order(to_rgb.conv, w)
        _permute_inputs(to_rgb.conv, order)
        _permute_outputs(conv, order)
        order = _input_order(conv.conv, w)
        _permute_inputs(conv.conv, order)
        _permute_outputs(up_conv, order)
        order = _input_order(up_conv.conv, w)
        _permute_inputs(up_conv.conv, order)
    if order is None:
        order = _input_order(G.to_rgb1.conv, w)
    _permute_inputs(G.to_rgb1.conv, order)
    _permute_outputs(G.conv1, order)
    order = _input_order(G.conv1.conv, w)
    _permute_inputs(G.conv1.conv, order)
    G.input.input.copy_(G.input.input[:, order])
    return G

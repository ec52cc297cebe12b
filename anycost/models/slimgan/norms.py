"""Batch norms for slimmable generators: every width has its own running statistics.

All three take ``(x, index, y)``: `index` is the position of the width in the generator's width list and
picks the statistics (x has that width's channels), `y` the class of each sample (conditional norms only).

- `SwitchableBatchNorm`: a private affine per width (SlimGAN's sBN);
- `SliceableConditionalBatchNorm` (the paper's scBN, "+"): a private affine per width and one class table
  stored at full width, whose leading channels every width uses:
  ``gamma_w * gamma_c[y, :c] * x_hat + beta_w + beta_c[y, :c]``, i.e. N + C parameter sets for N widths and
  C classes. (The paper's formula; the authors' code computes ``gamma_c * (gamma_w * x_hat + beta_w) + beta_c``.)
- `SwitchableConditionalBatchNorm` (naive, "x"): a full conditional BN per width, N x C parameter sets.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _class_table(num_classes: int, channels: int, scale: bool) -> nn.Parameter:
    """A [classes, channels] table: scales start at 1 + N(0, 0.02) (as in Mimicry's cBN), shifts at 0."""
    table = torch.empty(num_classes, channels)
    return nn.Parameter(nn.init.normal_(table, 1.0, 0.02) if scale else nn.init.zeros_(table))


def _normalisers(channels: Sequence[int], affine: bool) -> nn.ModuleList:
    return nn.ModuleList(nn.BatchNorm2d(c, affine=affine) for c in channels)


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    """[B, C] -> [B, C, 1, 1], to scale or shift a feature map per sample and channel."""
    return t[:, :, None, None]


class SwitchableBatchNorm(nn.Module):
    """One BatchNorm2d per width (private affine and statistics)."""

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        self.bns = _normalisers(channels, affine=True)

    def forward(self, x: torch.Tensor, index: int, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.bns[index](x)


class SliceableConditionalBatchNorm(nn.Module):
    """scBN: statistics and affine per width, class tables at the widest width sliced to each width."""

    def __init__(self, channels: Sequence[int], num_classes: int):
        super().__init__()
        self.stats = _normalisers(channels, affine=False)
        self.gamma = nn.ParameterList(nn.Parameter(torch.ones(c)) for c in channels)
        self.beta = nn.ParameterList(nn.Parameter(torch.zeros(c)) for c in channels)
        self.class_gamma = _class_table(num_classes, max(channels), scale=True)
        self.class_beta = _class_table(num_classes, max(channels), scale=False)

    def forward(self, x: torch.Tensor, index: int, y: torch.Tensor | None = None) -> torch.Tensor:
        c = x.shape[1]
        scale = self.gamma[index] * self.class_gamma[:, :c][y]
        shift = self.beta[index] + self.class_beta[:, :c][y]
        return self.stats[index](x) * _per_channel(scale) + _per_channel(shift)


class SwitchableConditionalBatchNorm(nn.Module):
    """Naive conditional BN: statistics and class tables of its own per width, no unconditional affine."""

    def __init__(self, channels: Sequence[int], num_classes: int):
        super().__init__()
        self.stats = _normalisers(channels, affine=False)
        self.class_gamma = nn.ParameterList(_class_table(num_classes, c, scale=True) for c in channels)
        self.class_beta = nn.ParameterList(_class_table(num_classes, c, scale=False) for c in channels)

    def forward(self, x: torch.Tensor, index: int, y: torch.Tensor | None = None) -> torch.Tensor:
        scale, shift = self.class_gamma[index][y], self.class_beta[index][y]
        return self.stats[index](x) * _per_channel(scale) + _per_channel(shift)


def make_norm(channels: Sequence[int], num_classes: int = 0, cbn: str = "sliceable") -> nn.Module:
    """The norm of one layer whose widths have `channels`: unconditional when `num_classes` is 0, else the
    `cbn` kind of conditional BN ("sliceable" or "switchable")."""
    if num_classes == 0:
        return SwitchableBatchNorm(channels)
    if cbn == "sliceable":
        return SliceableConditionalBatchNorm(channels, num_classes)
    return SwitchableConditionalBatchNorm(channels, num_classes)

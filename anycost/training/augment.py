"""Differentiable augmentation of everything the discriminator sees (DiffAugment, Zhao et al. 2020).

With a few hundred or thousand training images (the emoji heads are 893) the discriminator memorises the reals
within a few hundred thousand images and G's gradients die. Augmenting reals *and* fakes with the same
random, differentiable transforms, in D's steps and in G's, keeps D from overfitting without leaking the
augmentation into G's outputs. Policies: "color" (brightness, saturation, contrast), "translation" (shift
by up to 1/8 of the size, zero fill) and "cutout" (a zeroed square of half the size).

Every draw comes from the `torch.Generator` passed in, so a training step stays reproducible.
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _uniform(rng: torch.Generator, n: int, lo: float, hi: float, x: torch.Tensor) -> torch.Tensor:
    return (torch.rand(n, 1, 1, 1, generator=rng) * (hi - lo) + lo).to(x)


def _color(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    x = x + _uniform(rng, n, -0.5, 0.5, x)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(rng, n, 0.0, 2.0, x) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(rng, n, 0.5, 1.5, x) + mean


def _shifted_index(size: int, shift: torch.Tensor) -> torch.Tensor:
    """[N, size] source indices into a zero-padded-by-1 axis (0 and size+1 are the zero pads)."""
    idx = torch.arange(size).unsqueeze(0) - shift.unsqueeze(1) + 1
    return idx.clamp(0, size + 1)


def _translation(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    n, c, h, w = x.shape
    sy, sx = max(1, int(h * TRANSLATION_RATIO + 0.5)), max(1, int(w * TRANSLATION_RATIO + 0.5))
    ty = torch.randint(-sy, sy + 1, (n,), generator=rng)
    tx = torch.randint(-sx, sx + 1, (n,), generator=rng)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    rows = _shifted_index(h, ty).to(x.device)  # [N, H]
    cols = _shifted_index(w, tx).to(x.device)  # [N, W]
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = max(1, int(h * CUTOUT_RATIO + 0.5)), max(1, int(w * CUTOUT_RATIO + 0.5))
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=rng)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=rng)
    top, left = cy - ch // 2, cx - cw // 2  # the square may stick out of the image
    ys = torch.arange(h).view(1, h, 1)
    xs = torch.arange(w).view(1, 1, w)
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x)


_OPS = {"color": _color, "translation": _translation, "cutout": _cutout}


def check_policy(policy) -> tuple[str, ...]:
    """`policy` as a tuple of known names, in the order given; raises ValueError on an unknown one."""
    policy = tuple(policy)
    unknown = [p for p in policy if p not in POLICIES]
    if unknown or len(set(policy)) != len(policy):
        raise ValueError(f"augmentations must be distinct names from {POLICIES}, got {policy}")
    return policy


def diff_augment(x: torch.Tensor, policy: tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """`x` [N, C, H, W] through every transform of `policy`, each drawn per sample from `rng`."""
    for name in policy:
        x = _OPS[name](x, rng)
    return x

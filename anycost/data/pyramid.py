"""Multi-resolution batches for sampling-based multi-resolution training.

Every lower resolution is an exact repeated 2x2 box average of the full-resolution batch, so a pixel at
resolution r is the mean of the (R/r)^2 full-resolution pixels it covers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _is_power_of_two(n: int) -> bool:
    return isinstance(n, int) and n >= 1 and not n & (n - 1)


def multires_batch(images: torch.Tensor, resolutions) -> dict[int, torch.Tensor]:
    """Batch [N, C, R, R] -> {r: batch [N, C, r, r]} for every r in `resolutions` (powers of two <= R).

    Lower resolutions are built by halving repeatedly with 2x2 average pooling; r == R returns `images` itself.
    """
    if images.ndim != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be [N, C, R, R], got {tuple(images.shape)}")
    full = images.shape[-1]
    if not _is_power_of_two(full):
        raise ValueError(f"image resolution must be a power of two, got {full}")
    wanted = sorted(set(resolutions), reverse=True)
    for r in wanted:
        if not _is_power_of_two(r) or r > full:
            raise ValueError(f"resolutions must be powers of two <= {full}, got {r!r}")
    out: dict[int, torch.Tensor] = {}
    current = images
    for r in wanted:
        while current.shape[-1] > r:
            current = F.avg_pool2d(current, kernel_size=2, stride=2)
        out[r] = current
    return {r: out[r] for r in resolutions}


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Flip each sample of [N, C, H, W] horizontally with probability `p`, drawing from `generator`.

    Apply it before `multires_batch` so that every resolution of a sample shares the same flip.
    The draw happens on the generator's device (CPU by default) and is moved to the images' device.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {tuple(images.shape)}")
    device = generator.device if generator is not None else torch.device("cpu")
    flip = (torch.rand(images.shape[0], generator=generator, device=device) < p).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)

"""Sub-generator consistency: how close each sub-generator's output is to the full generator's.

For the same w and the same per-layer noise, each `SubnetConfig` renders an image at its resolution;
the full generator renders one at the model's resolution, which is *downsampled* to the config's
resolution by average pooling (area resampling for the power-of-two factors used here), as the
Anycost GAN paper compares outputs at the lower resolution. Measured per config, averaged over `n`
samples: the perceptual distance (`anycost.metrics.perceptual`) and the MSE over pixels and channels
(images in [-1, 1]). The full config itself scores 0 on both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from anycost.checks import check_positive
from anycost.models.stylegan2 import SubnetConfig


@dataclass(frozen=True)
class ConsistencyRow:
    """Consistency of one sub-generator with the full generator over `n` samples."""

    config: SubnetConfig
    resolution: int
    macs: int
    perceptual: float
    mse: float
    n: int

    def to_dict(self) -> dict:
        """JSON-ready: the config as its dict, the rest as plain numbers."""
        out = asdict(self)
        out["config"] = self.config.to_dict()
        return out


def downsample_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Average-pool square images [N, C, R, R] to `resolution` (R must be a multiple of it)."""
    size = images.shape[-1]
    if images.shape[-2] != size or size % resolution:
        raise ValueError(f"cannot area-downsample {tuple(images.shape[-2:])} images to {resolution} px")
    factor = size // resolution
    return images if factor == 1 else F.avg_pool2d(images, factor)


def check_configs(G, configs) -> list[SubnetConfig]:
    """`configs` as a non-empty list of SubnetConfigs of `G`'s architecture (TypeError / ValueError otherwise)."""
    configs = list(configs)
    if not configs:
        raise ValueError("give at least one SubnetConfig")
    for c in configs:
        if not isinstance(c, SubnetConfig):
            raise TypeError(f"configs must be SubnetConfigs, got {type(c).__name__}")
        if c.arch != G.arch:
            raise ValueError(f"config {c.describe()} is for {c.arch}, the generator is {G.arch}")
    return configs


def _render_each(G, w, noise, configs, truncation, impl):
    for config in configs:
        yield G(w, config=config, noise=noise, truncation=truncation, impl=impl)


def same_latent_outputs(G, configs: Sequence[SubnetConfig], n: int, seed: int = 0, batch: int = 16, *,
                        truncation: float = 1.0, impl: str = "auto"):
    """Yield, per batch of up to `batch` of the `n` samples, an iterator over each config's output (in order).

    Every config renders the same w and the same per-layer noise (drawn at the model's resolution); z and the noise
    come from one torch.Generator seeded by `seed`, so the same (n, seed, batch) gives the same samples. The outputs
    are rendered lazily, as the iterator is consumed (consume it before asking for the next batch).
    """
    device = G.w_avg.device
    rng = torch.Generator(device=device).manual_seed(seed)
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(b, G.arch.style_dim, generator=rng, device=device, dtype=G.w_avg.dtype)
        w = G.mapping(z)
        noise = G.make_noise(b, G.arch.resolution, rng)
        yield _render_each(G, w, noise, configs, truncation, impl)


@torch.no_grad()
def subnet_consistency(G, configs: Sequence[SubnetConfig], n: int = 64, seed: int = 0, perceptual="auto",
                       batch: int = 16, *, truncation: float = 1.0, impl: str = "auto") -> list[ConsistencyRow]:
    """Mean perceptual distance and MSE between each config's output and the downsampled full output.

    `perceptual` is a module d(x, y) -> [N] (e.g. from `load_perceptual`), a backend name for
    `load_perceptual`, or None to skip it (the column is then NaN). z, and the noise shared by all
    configs, come from one torch.Generator seeded by `seed` (same seed and batch: same samples).
    """
    configs = check_configs(G, configs)
    check_positive(n=n, batch=batch)
    if isinstance(perceptual, str):
        from anycost.metrics.perceptual import load_perceptual

        perceptual = load_perceptual(perceptual)
    if isinstance(perceptual, torch.nn.Module):
        perceptual = perceptual.to(G.w_avg.device)

    perc_sum = [0.0] * len(configs)
    mse_sum = [0.0] * len(configs)
    for outputs in same_latent_outputs(G, [G.full_config, *configs], n, seed, batch, truncation=truncation,
                                       impl=impl):
        full = next(outputs)
        for i, (config, sub) in enumerate(zip(configs, outputs)):
            ref = downsample_to(full, config.resolution)
            mse_sum[i] += (sub - ref).double().square().mean((1, 2, 3)).sum().item()
            if perceptual is not None:
                perc_sum[i] += perceptual(sub, ref).double().sum().item()
    return [
        ConsistencyRow(config=c, resolution=c.resolution, macs=c.macs,
                       perceptual=perc_sum[i] / n if perceptual is not None else math.nan,
                       mse=mse_sum[i] / n, n=n)
        for i, c in enumerate(configs)
    ]

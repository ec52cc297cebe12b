"""The Anycost search fitness: how far a sub-generator's output is from the full generator's.

`SubnetFitness` is the mean perceptual distance between a sub-generator's output and the full generator's
(area-downsampled to the sub-generator's resolution) on a fixed set of latents and noise, drawn exactly as
`anycost.metrics.subnet_consistency` draws them. `paired_difference` compares two configs on one set.
"""

from __future__ import annotations

import math

import torch

from anycost.checks import check_int
from anycost.metrics.consistency import downsample_to
from anycost.metrics.perceptual import load_perceptual


class SubnetFitness:
    """fitness(config) = mean distance between the config's output and the full output, over a fixed set.

    `n` latents z and the per-layer noise shared by all configs come from one ``torch.Generator``
    seeded by `seed`, batch by batch, exactly as `anycost.metrics.subnet_consistency` draws them (same
    n, seed and batch: same samples, same perceptual value). The full renders are computed once.
    `perceptual`: a module ``d(x, y) -> [N]``, a `load_perceptual` name ("auto", "hed-vgg", ...), or
    None for the pixel MSE. The per-sample distances are cached per config (``.cache``, see `distances`);
    with an `anycost` perceptual distance the full outputs' features are computed once per resolution
    (`PerceptualDistance.reference`), which halves the cost of each new config.
    """

    def __init__(self, G, n: int = 32, seed: int = 0, perceptual="auto", batch: int = 16, *,
                 truncation: float = 1.0, impl: str = "auto"):
        for label, value in (("n", n), ("batch", batch)):
            check_int(label, value, 1)
        check_int("seed", seed, 0)
        if isinstance(perceptual, str):
            perceptual = load_perceptual(perceptual)
        if isinstance(perceptual, torch.nn.Module):
            perceptual = perceptual.to(G.w_avg.device)
        self.G, self.n, self.seed, self.batch = G, n, seed, batch
        self.truncation, self.impl, self.perceptual = truncation, impl, perceptual
        self.metric = "mse" if perceptual is None else getattr(perceptual, "name", type(perceptual).__name__)
        self.cache: dict = {}
        self._references: dict = {}  # (batch index, resolution) -> the perceptual features of the full output
        device = G.w_avg.device
        rng = torch.Generator(device=device).manual_seed(seed)
        self.samples = []
        with torch.no_grad():
            for start in range(0, n, batch):
                b = min(batch, n - start)
                z = torch.randn(b, G.arch.style_dim, generator=rng, device=device, dtype=G.w_avg.dtype)
                w = G.mapping(z)
                noise = G.make_noise(b, G.arch.resolution, rng)
                full = G(w, noise=noise, truncation=truncation, impl=impl)
                self.samples.append((w, noise, full))

    def spec(self) -> dict:
        return {"metric": self.metric, "n": self.n, "seed": self.seed, "batch": self.batch,
                "truncation": self.truncation, "arch": self.G.arch.to_dict()}

    def __call__(self, config) -> float:
        return self.distances(config).mean().item()

    @torch.no_grad()
    def distances(self, config) -> torch.Tensor:
        """The distance of each of the `n` samples (float64 ``[n]``, on the CPU): two configs measured on
        one set differ sample by sample, which is what `paired_difference` compares."""
        if config in self.cache:
            return self.cache[config]
        if config.arch != self.G.arch:
            raise ValueError(f"config is for {config.arch}, the generator is {self.G.arch}")
        parts = []
        for i, (w, noise, full) in enumerate(self.samples):
            sub = self.G(w, config=config, noise=noise, truncation=self.truncation, impl=self.impl)
            ref = downsample_to(full, config.resolution)
            if self.perceptual is None:
                d = (sub - ref).double().square().mean((1, 2, 3))
            elif hasattr(self.perceptual, "distance_to"):  # the full side's features once per resolution
                key = (i, config.resolution)
                if key not in self._references:
                    self._references[key] = self.perceptual.reference(ref)
                d = self.perceptual.distance_to(sub, self._references[key])
            else:
                d = self.perceptual(sub, ref)
            parts.append(d.detach().double().cpu().reshape(-1))
        self.cache[config] = values = torch.cat(parts)
        return values


def paired_difference(a: torch.Tensor, b: torch.Tensor) -> dict:
    """Mean of ``a - b`` over paired samples with its standard error, and that mean relative to ``b``'s
    (negative: `a` is closer). With one sample the standard error is NaN."""
    if a.shape != b.shape or a.dim() != 1 or not len(a):
        raise ValueError(f"need two equal-length 1-D sets of paired values, got {tuple(a.shape)} and {tuple(b.shape)}")
    diff = (a - b).double()
    mean = diff.mean().item()
    se = diff.std().item() / math.sqrt(len(diff)) if len(diff) > 1 else math.nan
    base = b.double().mean().item()
    return {"difference": mean, "standard_error": se, "relative": mean / base if base else math.nan}

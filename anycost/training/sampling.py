"""Which sub-generator each training step runs: resolutions, uniform and flexible channel configs.

Every draw comes from a `torch.Generator` passed in, so a step's choices depend only on its seed.
"""

from __future__ import annotations

import torch

from anycost.models.stylegan2 import GeneratorArch, SubnetConfig, layer_resolution, n_layers


def choice(seq, rng: torch.Generator):
    """One element of `seq`, drawn uniformly with `rng`."""
    return seq[int(torch.randint(len(seq), (1,), generator=rng))]


def sample_resolution(arch: GeneratorArch, rng: torch.Generator, full_prob: float | None = None) -> int:
    """A resolution the generator can output (8 .. R): drawn uniformly, or, with `full_prob`, R with that
    probability and otherwise one of the lower ones, uniformly."""
    if full_prob is None:
        return choice(arch.resolutions, rng)
    lower = arch.resolutions[:-1]
    if not lower or float(torch.rand((), generator=rng)) < full_prob:
        return arch.resolution
    return choice(lower, rng)


def uniform_config(arch: GeneratorArch, ratio: float, resolution: int) -> SubnetConfig:
    return SubnetConfig.uniform(arch, ratio, resolution)


def flexible_config(arch: GeneratorArch, ratios, resolution: int, rng: torch.Generator) -> SubnetConfig:
    """Every layer picks its own ratio from `ratios` (widths by the official formula, with the cap)."""
    widths = [arch.channels(layer_resolution(i), choice(ratios, rng)) for i in range(n_layers(resolution))]
    return SubnetConfig.flexible(arch, widths, resolution)


def sample_subnet(arch: GeneratorArch, ratios, resolution: int, flexible_prob: float,
                  rng: torch.Generator) -> SubnetConfig:
    """A random sub-generator at `resolution`: flexible with probability `flexible_prob`, else uniform."""
    if float(torch.rand((), generator=rng)) < flexible_prob:
        return flexible_config(arch, ratios, resolution, rng)
    return uniform_config(arch, choice(ratios, rng), resolution)


def sandwich(arch: GeneratorArch, ratios, resolution: int, flexible_prob: float,
             rng: torch.Generator) -> list[SubnetConfig]:
    """The sandwich rule: [largest, smallest, one random] sub-generator at `resolution`."""
    return [
        SubnetConfig.full(arch, resolution),
        uniform_config(arch, min(ratios), resolution),
        sample_subnet(arch, ratios, resolution, flexible_prob, rng),
    ]

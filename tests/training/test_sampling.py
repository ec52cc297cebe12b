"""Which sub-generator a training step runs: resolution draws, the sandwich."""

import pytest
import torch

from anycost.models.stylegan2 import GeneratorArch, SubnetConfig
from anycost.training.sampling import choice, sample_resolution, sandwich

ARCH = GeneratorArch(64, channel_multiplier=1 / 32, channel_max=32, style_dim=16, n_mlp=2)  # 8, 16, 32, 64 px


def _draws(n, full_prob, seed=0):
    rng = torch.Generator().manual_seed(seed)
    return [sample_resolution(ARCH, rng, full_prob) for _ in range(n)]


def test_uniform_draws_are_unchanged_by_the_option():
    """None must draw exactly as before the option existed, so that older runs resume identically."""
    rng = torch.Generator().manual_seed(0)
    assert _draws(50, None) == [choice(ARCH.resolutions, rng) for _ in range(50)]


@pytest.mark.parametrize("full_prob", [0.0, 0.5, 1.0])
def test_full_resolution_probability(full_prob):
    draws = _draws(4000, full_prob)
    share = draws.count(64) / len(draws)
    assert share == pytest.approx(full_prob, abs=0.03)
    lower = [r for r in draws if r != 64]
    if full_prob < 1:  # the lower ones stay uniform among themselves
        for r in (8, 16, 32):
            assert lower.count(r) / len(lower) == pytest.approx(1 / 3, abs=0.04)


def test_single_resolution_arch_always_draws_it():
    arch = GeneratorArch(8, channel_multiplier=1 / 32, channel_max=32, style_dim=16, n_mlp=2)
    rng = torch.Generator().manual_seed(0)
    assert {sample_resolution(arch, rng, 0.0) for _ in range(10)} == {8}


def test_sandwich_is_largest_smallest_and_one_random():
    rng = torch.Generator().manual_seed(0)
    full, smallest, random = sandwich(ARCH, (0.25, 0.5, 1.0), 32, 0.5, rng)
    assert full == SubnetConfig.full(ARCH, 32) and smallest == SubnetConfig.uniform(ARCH, 0.25, 32)
    assert random.resolution == 32


@pytest.mark.parametrize("flexible_prob", [0.0, 1.0])
def test_flexible_prob_decides_the_random_member(flexible_prob):
    rng = torch.Generator().manual_seed(0)
    ratios = (0.25, 0.5, 0.75, 1.0)
    uniform = {SubnetConfig.uniform(ARCH, r, 32) for r in ratios}
    randoms = [sandwich(ARCH, ratios, 32, flexible_prob, rng)[2] for _ in range(40)]
    n_uniform = sum(c in uniform for c in randoms)
    assert n_uniform == 40 if flexible_prob == 0.0 else n_uniform < 4

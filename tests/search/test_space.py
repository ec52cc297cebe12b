"""Search-space operators: every sampled, mutated or crossed candidate is a valid config of the space."""

import math
import random

import pytest

from anycost.models.stylegan2 import GeneratorArch, SubnetConfig
from anycost.search import ChoiceSpace, GeneratorSpace, width_choices

SEEDS = range(200)


@pytest.fixture
def spaces(tiny_arch):
    return [GeneratorSpace(tiny_arch), GeneratorSpace(tiny_arch, resolutions=(8, 16, 32)),
            GeneratorSpace(GeneratorArch(64, channel_multiplier=0.125, channel_max=128, style_dim=256, n_mlp=4))]


def test_width_choices_follow_the_official_formula_and_cap(tiny_arch):
    choices = width_choices(tiny_arch)
    assert len(choices) == tiny_arch.n_styles == 8
    # the channel cap keeps the 4 px layers at 64 for every ratio
    assert choices[0] == choices[1] == (64,)
    assert choices[-1] == tuple(sorted({tiny_arch.channels(32, r) for r in (0.25, 0.5, 0.75, 1.0)}))
    assert all(c == tuple(sorted(set(c))) for c in choices)
    for r in (0.25, 0.5, 0.75, 1.0):
        assert all(w in c for w, c in zip(SubnetConfig.uniform(tiny_arch, r).widths, choices))
    with pytest.raises(ValueError):
        width_choices(tiny_arch, ())
    with pytest.raises(ValueError):
        width_choices(tiny_arch, (0.5, 1.5))


def test_operators_always_give_valid_configs(spaces):
    for space in spaces:
        for seed in SEEDS:
            rng = random.Random(seed)
            a, b = space.sample(rng), space.sample(rng)
            for cand in (a, b, space.mutate(a, rng, 0.1), space.mutate(b, rng, 1.0), space.crossover(a, b, rng)):
                assert isinstance(cand, SubnetConfig) and space.contains(cand), cand
                assert space.decode(space.encode(cand)) == cand
                assert space.cost(cand) >= space.cost(space.cheapest())


def test_mutation_and_crossover_genes(spaces):
    space = spaces[0]
    for seed in range(50):
        rng = random.Random(seed)
        a, b = space.sample(rng), space.sample(rng)
        assert space.mutate(a, rng, 0.0) == a
        child = space.crossover(a, b, rng)
        assert all(w in (x, y) for w, x, y in zip(child.widths, a.widths, b.widths))
        assert space.crossover(a, a, rng) == a
    # over many draws, p=1 changes the multi-choice layers, p=0.1 changes about a tenth of them
    rng = random.Random(0)
    full = space.decode([32, [c[-1] for c in space.choices]])
    changed = sum(m != f for _ in range(400) for m, f in zip(space.mutate(full, rng, 0.1).widths, full.widths))
    multi = sum(len(c) > 1 for c in space.choices)
    expected = 400 * multi * 0.1 * (1 - 1 / 4)  # a redraw keeps the same width 1 time in 4
    assert 0.6 * expected < changed < 1.4 * expected


def test_multi_resolution_space_reaches_every_resolution(spaces):
    space = spaces[1]
    rng = random.Random(1)
    seen = {space.sample(rng).resolution for _ in range(100)}
    seen |= {space.mutate(space.cheapest(), rng, 0.5).resolution for _ in range(100)}
    assert seen == {8, 16, 32}
    assert space.cheapest().resolution == 8
    assert space.size() == sum(math.prod(len(c) for c in space.choices[:n]) for n in (4, 6, 8))


def test_cheapest_is_cheapest_and_uniform_configs(spaces):
    for space in spaces:
        rng = random.Random(3)
        low = space.cost(space.cheapest())
        assert all(space.cost(space.sample(rng)) >= low for _ in range(100))
        uniform = space.uniform_configs()
        assert SubnetConfig.uniform(space.arch, 1.0, space.resolutions[-1]) in uniform
        assert all(space.contains(c) for c in uniform) and len(set(uniform)) == len(uniform)


def test_costs_and_bad_arguments(tiny_arch):
    space = GeneratorSpace(tiny_arch)
    full = SubnetConfig.full(tiny_arch)
    assert space.cost(full) == full.macs and space.cost_name == "macs"
    custom = GeneratorSpace(tiny_arch, cost=lambda c: float(sum(c.widths)))
    assert custom.cost(full) == sum(full.widths)
    with pytest.raises(ValueError, match="resolution"):
        GeneratorSpace(tiny_arch, resolutions=(64,))
    with pytest.raises(ValueError, match="cost"):
        GeneratorSpace(tiny_arch, cost="flops")
    with pytest.raises(TypeError):
        GeneratorSpace("arch")
    other = GeneratorArch(16, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)

    class Table:
        arch = other

        def predict(self, config):
            return 1.0

    with pytest.raises(ValueError, match="latency table"):
        GeneratorSpace(tiny_arch, cost=Table())
    with pytest.raises(ValueError):
        space.decode([32, [1, 2, 3]])
    with pytest.raises(ValueError):
        space.decode([32, [64] * 7 + [3]])  # 3 is no choice of the 32 px layer
    with pytest.raises(ValueError):
        space.mutate(full, random.Random(0), 1.5)
    with pytest.raises(ValueError, match="not a config"):
        space.mutate(SubnetConfig.full(other), random.Random(0), 0.1)


def test_choice_space():
    space = ChoiceSpace([(0, 1, 2), (5, 7)])
    rng = random.Random(0)
    for _ in range(100):
        c = space.crossover(space.sample(rng), space.mutate(space.sample(rng), rng, 0.5), rng)
        assert c[0] in (0, 1, 2) and c[1] in (5, 7)
    assert space.cheapest() == (0, 5) and space.cost((2, 7)) == 9.0
    assert space.decode(space.encode((1, 7))) == (1, 7)
    with pytest.raises(ValueError):
        space.decode([3, 5])
    with pytest.raises(ValueError):
        ChoiceSpace([(1,), ()])

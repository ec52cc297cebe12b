"""The GAN Compression search space: candidates stay in the supernet on its step, the genes group blocks as asked,
and `search.evolve` finds a known optimum in it."""

import random

import pytest

from anycost.gan_compression.space import I2ISpace, block_groups
from anycost.models.i2i import I2IArch, I2IConfig
from anycost.search.evolution import evolve

ARCH = I2IArch.resnet(8, n_blocks=6, image_size=32, step=4, separable=True)


def _inside(config: I2IConfig, arch=ARCH) -> bool:
    return all(0 < w <= most and w % arch.step == 0 for w, most in zip(config.widths, arch.widths))


@pytest.mark.parametrize("grouping", ["layer", "paper"])
def test_sample_mutate_crossover_stay_within_the_supernet_on_its_step(grouping):
    space, rng = I2ISpace(ARCH, grouping=grouping), random.Random(0)
    pool = [space.sample(rng) for _ in range(200)]
    pool += [space.mutate(rng.choice(pool), rng, 0.3) for _ in range(200)]
    pool += [space.crossover(rng.choice(pool), rng.choice(pool), rng) for _ in range(200)]
    for c in pool:
        assert _inside(c) and space.contains(c)
        assert space.decode(space.encode(c)) == c
    assert len(set(pool)) > 300  # the draws vary
    widths = {w for c in pool for w in c.widths}
    assert widths == set(range(4, 33, 4))  # every choice of the widest layer is reached
    assert space.cheapest() == I2IConfig(ARCH, (4,) * len(ARCH.widths))
    assert all(space.cost(space.cheapest()) <= space.cost(c) for c in pool)


def test_paper_grouping_shares_the_inner_width_of_three_block_groups():
    space = I2ISpace(ARCH, grouping="paper")
    assert len(space.choices) == 3 + 3 + 2  # the paper code's 8 knobs
    assert block_groups(9) == [range(0, 3), range(3, 6), range(6, 9)]
    assert block_groups(2) == [range(0, 1), range(1, 2)]
    rng = random.Random(1)
    for _ in range(50):
        w = space.sample(rng).widths[3:-2]
        assert w[0] == w[1] and w[2] == w[3] and w[4] == w[5]
    ungrouped = I2IConfig(ARCH, (8, 16, 32, 4, 8, 32, 32, 32, 32, 16, 8))
    assert I2ISpace(ARCH).contains(ungrouped) and not space.contains(ungrouped)
    with pytest.raises(ValueError, match="not a config of this search space"):
        space.decode(list(ungrouped.widths))
    assert space.size() == 2 * 4 * 8 * 8 ** 3 * 4 * 2


def test_costs_and_bad_inputs():
    full = I2IConfig.full(ARCH)
    assert I2ISpace(ARCH).cost(full) == full.macs
    assert I2ISpace(ARCH, cost="paper_macs").cost(full) == full.paper_macs > full.macs
    assert I2ISpace(ARCH, cost=lambda c: 7.0).cost(full) == 7.0
    with pytest.raises(ValueError, match="grouping"):
        I2ISpace(ARCH, grouping="stage")
    with pytest.raises(ValueError, match="cost must be"):
        I2ISpace(ARCH, cost="flops")
    with pytest.raises(ValueError, match="above the supernet's 8"):
        I2ISpace(ARCH).decode([12, 16, 32, 32, 32, 32, 32, 32, 32, 16, 8])
    other = I2IArch.resnet(8, n_blocks=3, image_size=32, step=4, separable=True)
    with pytest.raises(ValueError, match="not a config of this search space"):
        I2ISpace(ARCH).mutate(I2IConfig.full(other), random.Random(0), 0.5)


@pytest.mark.parametrize("grouping", ["layer", "paper"])
def test_evolve_finds_the_known_optimum_of_a_synthetic_fitness(grouping):
    """Fitness: distance to a hidden target sub-network, which costs exactly the budget; evolve must find it."""
    space = I2ISpace(ARCH, grouping=grouping)
    target = space.config([c[len(c) // 2] for c in space.choices])

    def fitness(c):
        return sum(abs(a - b) for a, b in zip(c.widths, target.widths))

    result = evolve(space, fitness, space.cost(target), population=16, generations=40, parents=4, n_crossover=8,
                    n_mutation=8, p_mutation=0.2, seed=0)
    assert result.best.candidate == target and result.best.fitness == 0
    assert all(space.cost(e.candidate) <= space.cost(target) for e in result.history)
    with pytest.raises(ValueError, match="below the cost of the cheapest candidate"):
        evolve(space, fitness, space.cost(space.cheapest()) - 1, population=4, parents=2, generations=1)

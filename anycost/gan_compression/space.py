"""The GAN Compression search space: sub-networks (`I2IConfig`) of a once-for-all supernet, for `search.evolve`.

The same evolutionary search runs over this space as over the Anycost generator's (`search.space.GeneratorSpace`):
one algorithm, two spaces. A candidate is an `I2IConfig` of the supernet's arch; every width is a multiple of the
arch's `step` up to the supernet's width of that layer (`I2IArch.width_choices`).

Genes (`grouping`):

- "layer" (the default): one gene per entry of `I2IArch.widths` (stem, down1, down2 = the residual trunk, the
  inner width of every residual block, up1, up2);
- "paper": the inner widths of consecutive residual blocks share one gene, in `PAPER_BLOCK_GROUPS` groups (3
  blocks each for 9 blocks), as the GAN Compression code's ResNet supernet does (its 8 "channels" knobs: stem,
  down1, down2, three block groups, up1, up2). A group of blocks of unequal widths takes the narrowest one's
  choices.

`cost`: "macs" (true MACs, `I2IConfig.macs`), "paper_macs" (the paper's profiler count, to compare with its
tables), an object with ``predict(config) -> ms`` (`latency.I2ILatencyTable`) or any callable ``config -> float``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from anycost.models.i2i import I2IArch, I2IConfig
from anycost.search.space import SEARCH_RATIOS, check_p, random_genes

GROUPINGS = ("layer", "paper")
#: Groups of consecutive residual blocks sharing one inner width under the "paper" grouping.
PAPER_BLOCK_GROUPS = 3
#: The stem, down1 and down2 genes come first; up1 and up2 last (see `I2IArch.widths`).
_HEAD, _TAIL = 3, 2


def block_groups(n_blocks: int, groups: int = PAPER_BLOCK_GROUPS) -> list[range]:
    """The blocks of each group: `groups` runs of consecutive blocks, as equal as they can be (fewer groups when
    there are fewer blocks)."""
    groups = min(groups, n_blocks)
    bounds = [round(g * n_blocks / groups) for g in range(groups + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:])]


class I2ISpace:
    """Sub-networks of supernet arch `arch` as a `search.evolve` space (see the module docstring)."""

    def __init__(self, arch: I2IArch, cost="macs", grouping: str = "layer"):
        if not isinstance(arch, I2IArch):
            raise TypeError(f"arch must be an I2IArch, got {type(arch).__name__}")
        if grouping not in GROUPINGS:
            raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
        self.arch, self.grouping = arch, grouping
        n = arch.n_blocks
        blocks = [range(k, k + 1) for k in range(n)] if grouping == "layer" else block_groups(n)
        # The layers (indices of I2IArch.widths) each gene sets.
        self.genes = ([[i] for i in range(_HEAD)] + [[_HEAD + k for k in group] for group in blocks]
                      + [[_HEAD + n + i] for i in range(_TAIL)])
        per_layer = arch.width_choices()
        self.choices = tuple(min((per_layer[i] for i in layers), key=len) for layers in self.genes)
        if cost in ("macs", "paper_macs"):
            self.cost_name, self._cost = cost, (lambda c, name=cost: float(getattr(c, name)))
        elif hasattr(cost, "predict"):
            if getattr(cost, "arch", arch) != arch:
                raise ValueError(f"the latency table is for {cost.arch.describe()}, the space for {arch.describe()}")
            self.cost_name, self._cost = "latency_ms", cost.predict
        elif callable(cost):
            self.cost_name, self._cost = getattr(cost, "__name__", "custom"), cost
        else:
            raise ValueError(f"cost must be 'macs', 'paper_macs', a latency table or a callable, got {cost!r}")

    # -- genes <-> configs -------------------------------------------------------------------------------------
    def config(self, genes: Sequence[int]) -> I2IConfig:
        """The config whose genes are `genes` (one value per gene, see `choices`)."""
        widths = [0] * len(self.arch.widths)
        for value, layers in zip(genes, self.genes, strict=True):
            for i in layers:
                widths[i] = value
        return I2IConfig(self.arch, tuple(widths))

    def genes_of(self, config: I2IConfig) -> list[int]:
        """The genes of `config`; a ValueError when it is not in this space."""
        self.check(config)
        return [config.widths[layers[0]] for layers in self.genes]

    def contains(self, config) -> bool:
        return (isinstance(config, I2IConfig) and config.arch == self.arch
                and all(len({config.widths[i] for i in layers}) == 1 and config.widths[layers[0]] in c
                        for layers, c in zip(self.genes, self.choices)))

    def check(self, config) -> None:
        if not self.contains(config):
            raise ValueError(f"{config!r} is not a config of this search space ({self.grouping} grouping)")

    # -- the evolve protocol -----------------------------------------------------------------------------------
    def sample(self, rng: random.Random) -> I2IConfig:
        return self.config(random_genes(self.choices, rng))

    def mutate(self, config: I2IConfig, rng: random.Random, p: float) -> I2IConfig:
        p = check_p(p)
        genes = self.genes_of(config)
        return self.config([rng.choice(c) if rng.random() < p else g for g, c in zip(genes, self.choices)])

    def crossover(self, a: I2IConfig, b: I2IConfig, rng: random.Random) -> I2IConfig:
        return self.config([x if rng.random() < 0.5 else y for x, y in zip(self.genes_of(a), self.genes_of(b))])

    def cost(self, config: I2IConfig) -> float:
        return float(self._cost(config))

    def cheapest(self) -> I2IConfig:
        """Every layer at one step: the fewest MACs (and, for a sane latency table, the fastest)."""
        return self.config([c[0] for c in self.choices])

    def encode(self, config: I2IConfig) -> list[int]:
        return list(config.widths)

    def decode(self, data) -> I2IConfig:
        try:
            config = I2IConfig(self.arch, tuple(int(w) for w in data))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{data!r} is not a config of this search space: {err}") from None
        self.check(config)
        return config

    def spec(self) -> dict:
        return {"kind": "anycost-i2i", "arch": self.arch.to_dict(), "grouping": self.grouping, "cost": self.cost_name}

    # -- reporting ---------------------------------------------------------------------------------------------
    def size(self) -> int:
        count = 1
        for c in self.choices:
            count *= len(c)
        return count

    def uniform_configs(self, ratios: Sequence[float] = SEARCH_RATIOS) -> list[I2IConfig]:
        """The uniform-ratio sub-networks of this space (`I2IConfig.uniform`), cheapest first, duplicates and
        those outside the space (a group of unequal blocks) left out."""
        configs = dict.fromkeys(I2IConfig.uniform(self.arch, r) for r in sorted(ratios))
        return [c for c in configs if self.contains(c)]

    def __repr__(self) -> str:
        return f"I2ISpace({self.arch.describe()}, grouping={self.grouping}, cost={self.cost_name}, size={self.size()})"

"""Search spaces for `anycost.search.evolution`: what a candidate is, how to draw, mutate and cross one.

A space is any object with these methods (`evolve` uses nothing else):

- ``sample(rng) -> candidate``: a random candidate (``rng`` is a `random.Random`);
- ``mutate(candidate, rng, p) -> candidate``: each gene redrawn with probability `p`;
- ``crossover(a, b, rng) -> candidate``: each gene taken from `a` or `b`;
- ``cost(candidate) -> float``: what the budget limits;
- ``cheapest() -> candidate``: the lowest-cost candidate (to refuse impossible budgets up front);
- ``encode(candidate) -> JSON value`` / ``decode(value) -> candidate``: for the resumable state file;
- ``spec() -> dict``: JSON description of the space (a resumed search checks it is unchanged).

Candidates must be hashable and ``encode`` canonical (equal candidates, equal JSON): the fitness
cache is keyed by it.

`ChoiceSpace` is a generic vector of discrete genes (used for synthetic problems);
`GeneratorSpace` is the Anycost sub-generator space: per-layer widths x output resolution.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

from anycost.models.stylegan2 import UNIFORM_RATIOS, GeneratorArch, SubnetConfig, layer_resolution, n_layers

COSTS = ("macs",)
#: The ratios `anycost search` takes each layer's width from by default: the trained ones and the midpoints
#: between them, so that a config can fill its budget. On the bundled model these found configs 3% closer to
#: the full output than the uniform one at 64 px x0.5 and x0.75, where the trained widths alone found none
#: (the model card's search table).
SEARCH_RATIOS = (0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


def check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(f"mutation probability must be in [0, 1], got {p!r}")
    return float(p)


def random_genes(choices: Sequence[Sequence], rng: random.Random) -> list:
    """One value per gene from its `choices` (each sorted cheapest first). Half the draws are independent per
    gene; half scatter around one random level, so that cheap and expensive candidates are both common
    (independent draws cluster near the middle)."""
    if rng.random() < 0.5:
        return [rng.choice(c) for c in choices]
    level = rng.random()
    out = []
    for c in choices:
        idx = round(level * (len(c) - 1) + rng.gauss(0.0, 0.7))
        out.append(c[min(len(c) - 1, max(0, idx))])
    return out


class ChoiceSpace:
    """Candidates are tuples with one value per position, drawn from that position's choices.

    `choices[i]` lists the values of position i, cheapest first (so `cheapest()` takes the first of
    each); `cost(candidate)` defaults to the sum of the values.
    """

    def __init__(self, choices: Sequence[Sequence], cost: Callable[[tuple], float] | None = None,
                 name: str = "choices"):
        self.choices = tuple(tuple(c) for c in choices)
        if not self.choices or any(not c for c in self.choices):
            raise ValueError("every position needs at least one choice")
        self._cost = cost or (lambda cand: float(sum(cand)))
        self.name = name

    def sample(self, rng: random.Random) -> tuple:
        return tuple(rng.choice(c) for c in self.choices)

    def mutate(self, cand: tuple, rng: random.Random, p: float) -> tuple:
        p = check_p(p)
        return tuple(rng.choice(c) if rng.random() < p else v for v, c in zip(cand, self.choices))

    def crossover(self, a: tuple, b: tuple, rng: random.Random) -> tuple:
        return tuple(x if rng.random() < 0.5 else y for x, y in zip(a, b))

    def cost(self, cand: tuple) -> float:
        return float(self._cost(cand))

    def cheapest(self) -> tuple:
        return tuple(c[0] for c in self.choices)

    def encode(self, cand: tuple) -> list:
        return list(cand)

    def decode(self, data) -> tuple:
        cand = tuple(data)
        if len(cand) != len(self.choices) or any(v not in c for v, c in zip(cand, self.choices)):
            raise ValueError(f"{data!r} is not a candidate of this space")
        return cand

    def spec(self) -> dict:
        return {"kind": self.name, "choices": [list(c) for c in self.choices]}


def width_choices(arch: GeneratorArch, ratios: Sequence[float] = UNIFORM_RATIOS) -> tuple[tuple[int, ...], ...]:
    """Sorted distinct widths every layer may take: the official width formula at each ratio
    (``min(channel_max, int(BASE * ratio * multiplier))``, at least 1), so the low-resolution layers
    that the channel cap keeps full have fewer choices."""
    ratios = tuple(ratios)
    if not ratios:
        raise ValueError("give at least one channel ratio")
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
            raise ValueError(f"channel ratios must be in (0, 1], got {r!r}")
    return tuple(
        tuple(sorted({max(1, arch.channels(layer_resolution(i), r)) for r in ratios}))
        for i in range(n_layers(arch.resolution))
    )


class GeneratorSpace:
    """Sub-generators of one architecture: an output resolution from `resolutions` and, per layer,
    one width from `width_choices(arch, ratios)`. Every candidate is a valid `SubnetConfig`.

    `cost`: "macs" (true MACs of one image, `SubnetConfig.macs`), an object with a
    ``predict(config) -> ms`` method (a `anycost.search.latency.LatencyTable`), or a callable
    ``config -> float``. Mutation redraws each layer's width (and the resolution, when there are
    several) with probability p; when the resolution changes, the layers it adds are drawn at random.
    """

    def __init__(self, arch: GeneratorArch, resolutions: Sequence[int] | None = None,
                 ratios: Sequence[float] = UNIFORM_RATIOS, cost="macs"):
        if not isinstance(arch, GeneratorArch):
            raise TypeError(f"arch must be a GeneratorArch, got {type(arch).__name__}")
        self.arch = arch
        resolutions = (arch.resolution,) if resolutions is None else tuple(sorted(set(resolutions)))
        if not resolutions:
            raise ValueError("give at least one resolution")
        for r in resolutions:
            if r not in arch.resolutions:
                raise ValueError(f"unknown resolution {r!r}: this generator can output {list(arch.resolutions)}")
        self.resolutions = resolutions
        self.ratios = tuple(ratios)
        self.choices = width_choices(arch, self.ratios)
        if cost == "macs":
            self.cost_name, self._cost = "macs", lambda c: float(c.macs)
        elif hasattr(cost, "predict"):
            table_arch = getattr(cost, "arch", arch)
            if table_arch != arch:
                raise ValueError(f"the latency table is for {table_arch}, the space is for {arch}")
            self.cost_name, self._cost = "latency_ms", cost.predict
        elif callable(cost):
            self.cost_name, self._cost = getattr(cost, "__name__", "custom"), cost
        else:
            raise ValueError(f"cost must be 'macs', a latency table or a callable, got {cost!r}")

    # -- candidates --------------------------------------------------------------------------
    def _config(self, resolution: int, widths) -> SubnetConfig:
        return SubnetConfig(self.arch, resolution, tuple(widths))

    def sample(self, rng: random.Random) -> SubnetConfig:
        resolution = rng.choice(self.resolutions)
        return self._config(resolution, random_genes(self.choices[:n_layers(resolution)], rng))

    def mutate(self, config: SubnetConfig, rng: random.Random, p: float) -> SubnetConfig:
        p = check_p(p)
        self.check(config)
        resolution = config.resolution
        if len(self.resolutions) > 1 and rng.random() < p:
            resolution = rng.choice(self.resolutions)
        widths = [rng.choice(self.choices[i]) if rng.random() < p else w for i, w in enumerate(config.widths)]
        count = n_layers(resolution)
        widths = widths[:count] + [rng.choice(self.choices[i]) for i in range(len(widths), count)]
        return self._config(resolution, widths)

    def crossover(self, a: SubnetConfig, b: SubnetConfig, rng: random.Random) -> SubnetConfig:
        self.check(a)
        self.check(b)
        resolution = a.resolution if rng.random() < 0.5 else b.resolution
        widths = []
        for i in range(n_layers(resolution)):
            genes = [c.widths[i] for c in (a, b) if i < len(c.widths)]
            widths.append(rng.choice(genes))
        return self._config(resolution, widths)

    def cost(self, config: SubnetConfig) -> float:
        return float(self._cost(config))

    def cheapest(self) -> SubnetConfig:
        res = self.resolutions[0]
        return self._config(res, [self.choices[i][0] for i in range(n_layers(res))])

    def uniform_configs(self) -> list[SubnetConfig]:
        """The uniform-ratio configs of this space (one per resolution x ratio, duplicates removed)."""
        out: list[SubnetConfig] = []
        for res in self.resolutions:
            for r in sorted(self.ratios):
                widths = [max(1, self.arch.channels(layer_resolution(i), r)) for i in range(n_layers(res))]
                c = self._config(res, widths)
                if c not in out:
                    out.append(c)
        return out

    def contains(self, config) -> bool:
        return (isinstance(config, SubnetConfig) and config.arch == self.arch
                and config.resolution in self.resolutions
                and all(w in self.choices[i] for i, w in enumerate(config.widths)))

    def check(self, config) -> None:
        if not self.contains(config):
            raise ValueError(f"{config!r} is not a config of this search space")

    def size(self) -> int:
        """Number of distinct configs in the space."""
        total = 0
        for res in self.resolutions:
            count = 1
            for i in range(n_layers(res)):
                count *= len(self.choices[i])
            total += count
        return total

    # -- serialisation -----------------------------------------------------------------------
    def encode(self, config: SubnetConfig) -> list:
        return [config.resolution, list(config.widths)]

    def decode(self, data) -> SubnetConfig:
        try:
            resolution, widths = data
            config = self._config(int(resolution), [int(w) for w in widths])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{data!r} is not a config of this search space: {err}") from None
        self.check(config)
        return config

    def spec(self) -> dict:
        return {"kind": "anycost-generator", "arch": self.arch.to_dict(), "resolutions": list(self.resolutions),
                "ratios": list(self.ratios), "cost": self.cost_name}

    def __repr__(self) -> str:
        return (f"GeneratorSpace({self.arch}, resolutions={list(self.resolutions)}, ratios={list(self.ratios)}, "
                f"cost={self.cost_name}, size={self.size()})")


def canonical(value) -> str:
    """Canonical JSON text of an encoded candidate (the fitness cache key)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))

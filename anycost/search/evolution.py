"""Evolutionary search under a cost budget, generic over the search space and the fitness.

`evolve(space, fitness, budget)` minimises ``fitness(candidate)`` (lower is better) over candidates
whose ``space.cost`` is at most `budget` (and within any extra constraints). Defaults are the
Anycost GAN paper's: a population of 50, 20 generations, the top 10 kept as parents, and per
generation 25 children by crossover of two random parents plus 25 by mutation of one (each gene
redrawn with probability 0.1). Generation 0 is the random initial population (plus any `initial`
candidates within budget); each later generation ranks the parents together with their children.

- Over-budget candidates are rejected and redrawn, at most `max_tries` times per slot. A budget
  below the cheapest candidate's cost is a ValueError before anything is evaluated.
- Every distinct candidate is evaluated once (a cache keyed by its canonical JSON encoding); ties in
  fitness are broken by cost, then by the encoding, so the run is deterministic given `seed` (and
  a deterministic fitness).
- With `state_path`, the state (parents, every evaluated candidate with its cost and fitness, the
  random generator's state) is written atomically after every generation; ``resume=True`` continues
  from it and ends exactly where an uninterrupted run would have (it may also extend a finished run
  to more generations).

The space is any object with ``sample(rng)``, ``mutate(c, rng, p)``, ``crossover(a, b, rng)``,
``cost(c)``, ``cheapest()``, ``encode(c)`` / ``decode(data)`` and ``spec()`` (`space.GeneratorSpace` for
the Anycost generator, `space.ChoiceSpace` for any list of per-gene choices); the fitness any callable
(`fitness.SubnetFitness` for the Anycost generator).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from anycost.checks import check_int
from anycost.fileio import atomic_write
from anycost.search.space import canonical

STATE_KIND = "anycost-evolution-state"
STATE_VERSION = 1
#: Extra draws spent looking for a never-evaluated child once an already evaluated one is at hand.
NOVELTY_TRIES = 100


@dataclass(frozen=True)
class Evaluated:
    """One evaluated candidate: its cost, its fitness (lower is better) and the generation it first appeared in."""

    candidate: object
    cost: float
    fitness: float
    generation: int


@dataclass
class SearchResult:
    """Outcome of `evolve`: the best candidate within budget, the final parents and everything evaluated."""

    best: Evaluated
    parents: list[Evaluated]
    history: list[Evaluated]
    generations: int
    budget: float

    def pareto(self) -> list[Evaluated]:
        """Evaluated candidates that no other beats on both cost and fitness, cheapest first."""
        front: list[Evaluated] = []
        for e in sorted(self.history, key=lambda e: (e.cost, e.fitness)):
            if not front or e.fitness < front[-1].fitness:
                front.append(e)
        return front

    def best_under(self, budget: float) -> Evaluated | None:
        """The fittest evaluated candidate whose cost is at most `budget` (None if there is none)."""
        within = [e for e in self.history if e.cost <= budget]
        return min(within, key=lambda e: (e.fitness, e.cost)) if within else None


def check_budget(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def evolve(space, fitness: Callable[[object], float], budget: float, *, population: int = 50, generations: int = 20,
           parents: int = 10, n_crossover: int = 25, n_mutation: int = 25, p_mutation: float = 0.1, seed: int = 0,
           constraints: Sequence[tuple[str, Callable[[object], float], float]] = (), initial: Sequence = (),
           max_tries: int = 1000, state_path: str | Path | None = None, resume: bool = False,
           progress: bool = False) -> SearchResult:
    """Search `space` for the candidate of lowest `fitness` whose ``space.cost`` is <= `budget`.

    `constraints`: extra ``(name, cost_fn, limit)`` limits every candidate must also respect.
    `initial`: candidates put into generation 0 (those within budget) before the random ones.
    See the module docstring for the algorithm, determinism and resuming.
    """
    budget = check_budget("budget", budget)
    for name, value, low in (("population", population, 1), ("generations", generations, 0),
                             ("parents", parents, 1), ("n_crossover", n_crossover, 0),
                             ("n_mutation", n_mutation, 0), ("max_tries", max_tries, 1), ("seed", seed, 0)):
        check_int(name, value, low)
    if parents > population:
        raise ValueError(f"parents ({parents}) cannot exceed the population ({population})")
    if isinstance(p_mutation, bool) or not isinstance(p_mutation, (int, float)) or not 0 <= p_mutation <= 1:
        raise ValueError(f"p_mutation must be in [0, 1], got {p_mutation!r}")
    if resume and state_path is None:
        raise ValueError("resume needs a state_path")
    constraints = [(str(n), fn, check_budget(f"limit of constraint {n!r}", lim)) for n, fn, lim in constraints]
    run = _Evolution(space, fitness, budget, constraints, seed=seed, parents=parents, max_tries=max_tries,
                     state_path=Path(state_path) if state_path is not None else None)
    run.settings.update(population=population, n_crossover=n_crossover, n_mutation=n_mutation,
                        p_mutation=float(p_mutation), initial=[canonical(space.encode(c)) for c in initial])
    if resume and run.state_path.is_file():
        run.restore()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=generations + 1, initial=min(run.done + 1, generations + 1), desc="search", unit="gen")
    try:
        if run.done < 0:
            run.first_generation(initial, population)
            run.finish_generation(bar)
        while run.done < generations:
            run.next_generation(n_mutation, n_crossover, p_mutation)
            run.finish_generation(bar)
    finally:
        if bar:
            bar.close()
    final = [run.history[k] for k in run.parent_keys]
    return SearchResult(best=final[0], parents=final, history=list(run.history.values()), generations=run.done,
                        budget=budget)


class _Evolution:
    """The state of one `evolve` run: every evaluated candidate (by canonical key), the parents, the random
    generator, the last completed generation; and the steps that advance it."""

    def __init__(self, space, fitness, budget: float, constraints, *, seed: int, parents: int, max_tries: int,
                 state_path: Path | None):
        self.space, self.fitness, self.budget, self.constraints = space, fitness, budget, constraints
        self.n_parents, self.max_tries, self.state_path = parents, max_tries, state_path
        self.cheapest = space.cheapest()
        low = space.cost(self.cheapest)
        if low > budget:
            raise ValueError(f"budget {budget:g} is below the cost of the cheapest candidate ({low:g})")
        for name, fn, limit in constraints:
            if fn(self.cheapest) > limit:
                raise ValueError(f"{name} limit {limit:g} is below the cheapest candidate's {name} "
                                 f"({fn(self.cheapest):g})")
        spec = getattr(fitness, "spec", None)
        self.settings = {"space": space.spec(), "fitness": spec() if callable(spec) else None, "budget": budget,
                         "parents": parents, "seed": seed, "max_tries": max_tries,
                         "constraints": [[n, lim] for n, _, lim in constraints]}
        self.rng = random.Random(seed)
        self.history: dict[str, Evaluated] = {}  # canonical key -> evaluation (insertion = evaluation order)
        self.evaluated: set = set()  # the same candidates, for fast membership tests
        self.done = -1  # last completed generation
        self.parent_keys: list[str] = []

    def feasible(self, cand) -> bool:
        return self.space.cost(cand) <= self.budget and all(fn(cand) <= lim for _, fn, lim in self.constraints)

    def key_of(self, cand) -> str:
        return canonical(self.space.encode(cand))

    def evaluate(self, cand, generation: int) -> str:
        key = self.key_of(cand)
        if key not in self.history:
            value = float(self.fitness(cand))
            if not math.isfinite(value):
                raise ValueError(f"fitness returned {value} for {self.space.encode(cand)!r}")
            self.history[key] = Evaluated(cand, self.space.cost(cand), value, generation)
            self.evaluated.add(cand)
        return key

    def rank(self, keys) -> list[str]:
        unique = list(dict.fromkeys(keys))
        return sorted(unique, key=lambda k: (self.history[k].fitness, self.history[k].cost, k))[:self.n_parents]

    def draw(self, make, taken: set):
        """A feasible candidate not in `taken`, preferably never evaluated (up to NOVELTY_TRIES more draws once
        one that was evaluated before is found); None when `max_tries` draws give nothing feasible and new."""
        fallback, left = None, self.max_tries
        while left > 0:
            left -= 1
            cand = make()
            if not self.feasible(cand) or cand in taken:
                continue
            if cand not in self.evaluated:
                return cand
            if fallback is None:
                fallback, left = cand, min(left, NOVELTY_TRIES)
        return fallback

    def first_generation(self, initial: Sequence, population: int) -> None:
        """Generation 0: the `initial` candidates within budget, then random ones up to `population`."""
        pool: list[str] = []
        for cand in initial:
            self.space.decode(self.space.encode(cand))  # must belong to the space
            if self.feasible(cand) and self.key_of(cand) not in pool and len(pool) < population:
                pool.append(self.evaluate(cand, 0))
        while len(pool) < population:
            cand = self.draw(lambda: self.space.sample(self.rng), {self.history[k].candidate for k in pool})
            if cand is None:
                break
            pool.append(self.evaluate(cand, 0))
        if not pool:  # random draws found nothing within budget: start from the cheapest candidate
            pool.append(self.evaluate(self.cheapest, 0))
        self.parent_keys = self.rank(pool)
        self.done = 0

    def next_generation(self, n_mutation: int, n_crossover: int, p_mutation: float) -> None:
        """Mutation children, then crossover children of the parents; the best of all become the parents."""
        generation = self.done + 1
        parent_list = [self.history[k].candidate for k in self.parent_keys]
        pool, taken = list(self.parent_keys), set(parent_list)
        space, rng = self.space, self.rng
        makers = [lambda: space.mutate(rng.choice(parent_list), rng, p_mutation)] * n_mutation
        makers += [lambda: space.crossover(rng.choice(parent_list), rng.choice(parent_list), rng)] * n_crossover
        for make in makers:
            cand = self.draw(make, taken)
            if cand is not None:
                taken.add(cand)
                pool.append(self.evaluate(cand, generation))
        self.parent_keys = self.rank(pool)
        self.done = generation

    def finish_generation(self, bar) -> None:
        self.save()
        if bar:
            bar.update(1)
            bar.set_postfix(best=f"{self.history[self.parent_keys[0]].fitness:.4g}", evaluated=len(self.history))

    def save(self) -> None:
        """Write the state atomically (when there is a state path)."""
        if self.state_path is None:
            return
        version, internal, gauss = self.rng.getstate()
        state = {
            "kind": STATE_KIND, "version": STATE_VERSION, "settings": self.settings, "generation": self.done,
            "parents": self.parent_keys, "rng": [version, list(internal), gauss],
            "history": [{"candidate": self.space.encode(e.candidate), "cost": e.cost, "fitness": e.fitness,
                         "generation": e.generation} for e in self.history.values()],
        }
        atomic_write(self.state_path, lambda tmp: Path(tmp).write_text(json.dumps(state)))

    def restore(self) -> None:
        """Continue from the state file, which must have been written with the same settings."""
        path = self.state_path
        state = json.loads(path.read_text())
        if state.get("kind") != STATE_KIND or state.get("version") != STATE_VERSION:
            raise ValueError(f"{path} is not an evolution state file of version {STATE_VERSION}")
        settings = json.loads(json.dumps(self.settings))
        if state["settings"] != settings:
            changed = sorted(k for k in settings if state["settings"].get(k) != settings[k])
            raise ValueError(f"cannot resume {path}: the search settings differ ({', '.join(changed)})")
        for item in state["history"]:
            cand = self.space.decode(item["candidate"])
            self.history[canonical(item["candidate"])] = Evaluated(cand, item["cost"], item["fitness"],
                                                                   item["generation"])
            self.evaluated.add(cand)
        self.parent_keys = list(state["parents"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.done = state["generation"]

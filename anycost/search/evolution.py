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

`SubnetFitness` is the Anycost fitness: the mean perceptual distance between a sub-generator's
output and the full generator's (area-downsampled to the sub-generator's resolution) on a fixed set
of latents and noise, drawn exactly as `anycost.metrics.subnet_consistency` draws them.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from anycost.fileio import atomic_write
from anycost.search.space import SEARCH_RATIOS, canonical

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


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _check_budget(name: str, value) -> float:
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
    budget = _check_budget("budget", budget)
    for name, value, low in (("population", population, 1), ("generations", generations, 0),
                             ("parents", parents, 1), ("n_crossover", n_crossover, 0),
                             ("n_mutation", n_mutation, 0), ("max_tries", max_tries, 1)):
        _check_int(name, value, low)
    _check_int("seed", seed, 0)
    if parents > population:
        raise ValueError(f"parents ({parents}) cannot exceed the population ({population})")
    if isinstance(p_mutation, bool) or not isinstance(p_mutation, (int, float)) or not 0 <= p_mutation <= 1:
        raise ValueError(f"p_mutation must be in [0, 1], got {p_mutation!r}")
    if resume and state_path is None:
        raise ValueError("resume needs a state_path")
    constraints = [(str(n), fn, _check_budget(f"limit of constraint {n!r}", lim)) for n, fn, lim in constraints]

    cheapest = space.cheapest()
    low = space.cost(cheapest)
    if low > budget:
        raise ValueError(f"budget {budget:g} is below the cost of the cheapest candidate ({low:g})")
    for name, fn, limit in constraints:
        if fn(cheapest) > limit:
            raise ValueError(f"{name} limit {limit:g} is below the cheapest candidate's {name} ({fn(cheapest):g})")

    def feasible(cand) -> bool:
        return space.cost(cand) <= budget and all(fn(cand) <= lim for _, fn, lim in constraints)

    spec = getattr(fitness, "spec", None)
    settings = {
        "space": space.spec(), "fitness": spec() if callable(spec) else None, "budget": budget,
        "population": population, "parents": parents, "n_crossover": n_crossover, "n_mutation": n_mutation,
        "p_mutation": float(p_mutation), "seed": seed, "max_tries": max_tries,
        "constraints": [[n, lim] for n, _, lim in constraints],
        "initial": [canonical(space.encode(c)) for c in initial],
    }
    rng = random.Random(seed)
    history: dict[str, Evaluated] = {}  # canonical key -> evaluation (insertion = evaluation order)
    evaluated: set = set()  # the same candidates, for fast membership tests
    state_path = Path(state_path) if state_path is not None else None
    done = -1  # last completed generation
    parent_keys: list[str] = []

    if resume and state_path.is_file():
        state = json.loads(state_path.read_text())
        if state.get("kind") != STATE_KIND or state.get("version") != STATE_VERSION:
            raise ValueError(f"{state_path} is not an evolution state file of version {STATE_VERSION}")
        if state["settings"] != json.loads(json.dumps(settings)):
            changed = sorted(k for k in settings if state["settings"].get(k) != json.loads(json.dumps(settings[k])))
            raise ValueError(f"cannot resume {state_path}: the search settings differ ({', '.join(changed)})")
        for item in state["history"]:
            cand = space.decode(item["candidate"])
            history[canonical(item["candidate"])] = Evaluated(cand, item["cost"], item["fitness"], item["generation"])
            evaluated.add(cand)
        parent_keys = list(state["parents"])
        version, internal, gauss = state["rng"]
        rng.setstate((version, tuple(internal), gauss))
        done = state["generation"]

    def key_of(cand) -> str:
        return canonical(space.encode(cand))

    def evaluate(cand, generation: int) -> str:
        key = key_of(cand)
        if key not in history:
            value = float(fitness(cand))
            if not math.isfinite(value):
                raise ValueError(f"fitness returned {value} for {space.encode(cand)!r}")
            history[key] = Evaluated(cand, space.cost(cand), value, generation)
            evaluated.add(cand)
        return key

    def rank(keys) -> list[str]:
        unique = list(dict.fromkeys(keys))
        return sorted(unique, key=lambda k: (history[k].fitness, history[k].cost, k))[:parents]

    def draw(make, taken: set):
        """A feasible candidate not in `taken`, preferably never evaluated (up to NOVELTY_TRIES more draws once
        one that was evaluated before is found); None when `max_tries` draws give nothing feasible and new."""
        fallback, left = None, max_tries
        while left > 0:
            left -= 1
            cand = make()
            if not feasible(cand):
                continue
            if cand in taken:
                continue
            if cand not in evaluated:
                return cand
            if fallback is None:
                fallback, left = cand, min(left, NOVELTY_TRIES)
        return fallback

    def save(generation: int) -> None:
        if state_path is None:
            return
        version, internal, gauss = rng.getstate()
        state = {
            "kind": STATE_KIND, "version": STATE_VERSION, "settings": settings, "generation": generation,
            "parents": parent_keys, "rng": [version, list(internal), gauss],
            "history": [{"candidate": space.encode(e.candidate), "cost": e.cost, "fitness": e.fitness,
                         "generation": e.generation} for e in history.values()],
        }
        atomic_write(state_path, lambda tmp: Path(tmp).write_text(json.dumps(state)))

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=generations + 1, initial=min(done + 1, generations + 1), desc="search", unit="gen")
    try:
        if done < 0:  # generation 0: initial candidates within budget, then random ones
            pool: list[str] = []
            for cand in initial:
                space.decode(space.encode(cand))  # must belong to the space
                if feasible(cand) and key_of(cand) not in pool and len(pool) < population:
                    pool.append(evaluate(cand, 0))
            while len(pool) < population:
                cand = draw(lambda: space.sample(rng), {history[k].candidate for k in pool})
                if cand is None:
                    break
                pool.append(evaluate(cand, 0))
            if not pool:  # random draws found nothing within budget: start from the cheapest candidate
                pool.append(evaluate(cheapest, 0))
            parent_keys = rank(pool)
            done = 0
            save(done)
            if bar:
                bar.update(1)
                bar.set_postfix(best=f"{history[parent_keys[0]].fitness:.4g}", evaluated=len(history))
        while done < generations:
            generation = done + 1
            parent_list = [history[k].candidate for k in parent_keys]
            pool = list(parent_keys)
            taken = set(parent_list)
            for _ in range(n_mutation):
                cand = draw(lambda ps=parent_list: space.mutate(rng.choice(ps), rng, p_mutation), taken)
                if cand is not None:
                    taken.add(cand)
                    pool.append(evaluate(cand, generation))
            for _ in range(n_crossover):
                cand = draw(lambda ps=parent_list: space.crossover(rng.choice(ps), rng.choice(ps), rng), taken)
                if cand is not None:
                    taken.add(cand)
                    pool.append(evaluate(cand, generation))
            parent_keys = rank(pool)
            done = generation
            save(done)
            if bar:
                bar.update(1)
                bar.set_postfix(best=f"{history[parent_keys[0]].fitness:.4g}", evaluated=len(history))
    finally:
        if bar:
            bar.close()

    final = [history[k] for k in parent_keys]
    return SearchResult(best=final[0], parents=final, history=list(history.values()), generations=done, budget=budget)


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
        from anycost.metrics.consistency import downsample_to

        for label, value in (("n", n), ("batch", batch)):
            _check_int(label, value, 1)
        _check_int("seed", seed, 0)
        if isinstance(perceptual, str):
            from anycost.metrics.perceptual import load_perceptual

            perceptual = load_perceptual(perceptual)
        if isinstance(perceptual, torch.nn.Module):
            perceptual = perceptual.to(G.w_avg.device)
        self.G, self.n, self.seed, self.batch = G, n, seed, batch
        self.truncation, self.impl, self.perceptual = truncation, impl, perceptual
        self.metric = "mse" if perceptual is None else getattr(perceptual, "name", type(perceptual).__name__)
        self._downsample = downsample_to
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
            ref = self._downsample(full, config.resolution)
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


# -- the `anycost search` run: search, compare with the uniform configs, write the reports -------------
def parse_macs_budget(text, full_macs: int) -> float:
    """'0.5' -> half of `full_macs`; '90M', '0.09G', '2e7' -> absolute MACs (a bare number > 1 is absolute)."""
    units = {"K": 1e3, "M": 1e6, "G": 1e9}
    s = str(text).strip().upper()
    try:
        if s and s[-1] in units:
            value = float(s[:-1]) * units[s[-1]]
        else:
            value = float(s)
            value = value * full_macs if 0 < value <= 1 else value
    except ValueError:
        raise ValueError(f"bad MACs budget {text!r}: use a fraction of the full model (0.5) or MACs (90M, 0.09G)") \
            from None
    return _check_budget("MACs budget", value)


def _entry(e: Evaluated, table=None) -> dict:
    c = e.candidate
    out = {"config": c.to_dict(), "describe": c.describe(), "macs": c.macs, "cost": e.cost, "fitness": e.fitness,
           "generation": e.generation, "ratios": [round(r, 4) for r in c.ratios]}
    if table is not None:
        out["latency_ms"] = table.predict(c)
    return out


def plot_pareto(history: Sequence[Evaluated], front: Sequence[Evaluated], uniform: Sequence[Evaluated],
                best: Evaluated, budget: float, path, cost_label: str, metric: str, scale: float = 1.0) -> Path | None:
    """Cost vs fitness of every evaluated config, the Pareto front, the uniform configs and the pick."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([e.cost / scale for e in history], [e.fitness for e in history], s=10, c="0.7",
               label=f"evaluated ({len(history)})")
    ax.plot([e.cost / scale for e in front], [e.fitness for e in front], "-o", ms=4, c="C0", label="Pareto front")
    if uniform:
        ax.scatter([e.cost / scale for e in uniform], [e.fitness for e in uniform], marker="s", s=40, c="C3",
                   label="uniform ratios", zorder=3)
    ax.scatter([best.cost / scale], [best.fitness], marker="*", s=200, c="C2", label="searched (best)", zorder=4)
    ax.axvline(budget / scale, color="k", ls="--", lw=1, label="budget")
    ax.set_xlabel(cost_label)
    ax.set_ylabel("distance to the full output (lower is better)")
    ax.set_title(f"fitness: {metric}", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_search(G, out, *, budget_macs=None, budget_ms: float | None = None, latency_table=None,
               resolution: int | None = None, population: int = 50, generations: int = 20, parents: int = 10,
               n_crossover: int = 25, n_mutation: int = 25, p_mutation: float = 0.1, n: int = 32, seed: int = 0,
               perceptual="auto", impl: str = "auto", seed_uniform: bool = True, validate: int = 256,
               held_out: int = 256, ratios=SEARCH_RATIOS, resume: bool = False, progress: bool = True,
               log=print) -> dict:
    """Search `G`'s sub-generators at `resolution` under a MACs and/or latency budget; write best.json,
    pareto.json, pareto.png and state.json (and latency.json when a table is measured) into `out`.

    `budget_macs`: see `parse_macs_budget`. `budget_ms` predicts latency from `latency_table` (a
    `LatencyTable` or a JSON path; default: ``out/latency.json`` if present, else measured now). With both
    budgets the latency is the searched cost and the MACs an extra constraint. The uniform configs within
    budget enter the initial population unless `seed_uniform` is False.

    The search fitness is measured on only `n` latents, and an evolution that ranks hundreds of configs on them
    also selects for their noise. So the pick is made on other latents: the final parents and the uniform
    configs within budget are measured on `validate` latents (seed + 1), and the best of them there is the pick
    (``validation`` in the summary; `validate` = 0 keeps the evolution's best). The pick and the largest
    uniform config within budget are then measured on a third set of `held_out` latents (seed + 2):
    ``held_out`` in the summary (pareto.json), which this returns, with their paired difference
    (`paired_difference`: the mean of pick minus uniform over those latents, its standard error, and that
    relative to the uniform config's distance).

    `ratios`: the channel ratios whose widths each layer may take (`SEARCH_RATIOS`: the trained ones and the
    midpoints between them; `UNIFORM_RATIOS` for the trained widths only). Widths training never sampled
    are slices of the same weights; the validation keeps them out of the pick where they are worse.
    """
    from anycost.config import SubnetConfig
    from anycost.search.latency import LatencyTable, measure_latency_table, missing_keys
    from anycost.search.space import GeneratorSpace

    if budget_macs is None and budget_ms is None:
        raise ValueError("give a MACs budget, a latency budget, or both")
    _check_int("validate", validate, 0)
    _check_int("held_out", held_out, 1)
    ratios = tuple(ratios)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolution = G.arch.resolution if resolution is None else resolution
    full = SubnetConfig.full(G.arch, resolution)
    macs_limit = parse_macs_budget(budget_macs, full.macs) if budget_macs is not None else None
    table = None
    if budget_ms is not None:
        budget_ms = _check_budget("latency budget (ms)", budget_ms)
        table_path = Path(latency_table) if isinstance(latency_table, (str, Path)) else out / "latency.json"
        if isinstance(latency_table, LatencyTable):
            table = latency_table
        elif table_path.is_file():
            table = LatencyTable.load(table_path)
            log(f"latency table: {table_path} ({len(table.entries)} layers, {table.threads} thread(s))")
        else:
            log(f"measuring the per-layer latency table ({torch.get_num_threads()} thread(s), impl={impl}) ...")
            table = measure_latency_table(G, ratios, resolution=resolution, impl=impl, progress=progress)
            table.save(out / "latency.json")
            log(f"wrote {out / 'latency.json'}")
    if budget_ms is not None:
        space = GeneratorSpace(G.arch, (resolution,), ratios=ratios, cost=table)
        missing = missing_keys(table, ratios, resolution)
        if missing:
            raise ValueError(f"the latency table lacks {len(missing)} layer(s) that widths of ratios {list(ratios)} "
                             f"can need (e.g. {missing[0]}): measure one with these ratios (anycost search does "
                             f"when no --latency-table is given and OUT/latency.json is absent)")
        budget, cost_label, scale = budget_ms, "predicted latency (ms, batch 1)", 1.0
        constraints = [("MACs", lambda c: float(c.macs), macs_limit)] if macs_limit is not None else []
    else:
        space = GeneratorSpace(G.arch, (resolution,), ratios=ratios)
        budget, cost_label, scale, constraints = macs_limit, "true GMACs (batch 1)", 1e9, []
    if perceptual == "mse":
        perceptual = None
    fitness = SubnetFitness(G, n=n, seed=seed, perceptual=perceptual, impl=impl)

    def within(c) -> bool:
        return space.cost(c) <= budget and all(fn(c) <= lim for _, fn, lim in constraints)

    uniform = space.uniform_configs()
    log(f"search space: {space.size()} configs at {resolution} px; budget {budget / scale:.4g} "
        f"{'ms' if budget_ms is not None else 'GMACs'} (full: {space.cost(full) / scale:.4g}); fitness: "
        f"{fitness.metric} on {n} latents (seed {seed})")
    result = evolve(space, fitness, budget, population=population, generations=generations, parents=parents,
                    n_crossover=n_crossover, n_mutation=n_mutation, p_mutation=p_mutation, seed=seed,
                    constraints=constraints, initial=[c for c in uniform if within(c)] if seed_uniform else (),
                    state_path=out / "state.json", resume=resume, progress=progress)
    known = {e.candidate: e for e in result.history}
    uniform_eval = [known.get(c) or Evaluated(c, space.cost(c), fitness(c), -1) for c in uniform]
    fits = [e for e in uniform_eval if within(e.candidate)]
    nearest = max(fits, key=lambda e: e.cost) if fits else None
    comparison = []
    for u in fits:
        s = result.best_under(u.cost)
        comparison.append({"uniform": _entry(u, table), "searched": _entry(s, table) if s else None})
    best, validation = result.best, None
    if validate:  # pick among the finalists on latents the search never saw
        finalists = list(dict.fromkeys([e.candidate for e in result.parents] + [e.candidate for e in fits]))
        check = SubnetFitness(G, n=validate, seed=seed + 1, perceptual=fitness.perceptual, impl=impl)
        scored = sorted(((check(c), space.cost(c), canonical(space.encode(c)), c) for c in finalists),
                        key=lambda t: t[:3])
        best = {**known, **{e.candidate: e for e in uniform_eval}}[scored[0][3]]
        validation = {"seed": seed + 1, "n": validate, "search_best": _entry(result.best, table),
                      "finalists": [{"describe": c.describe(), "widths": list(c.widths), "cost": cost,
                                     "fitness": fitness(c), "validation": value} for value, cost, _, c in scored]}
        log(f"validation on {validate} other latents (seed {seed + 1}): picked {best.candidate.describe()} "
            f"from {len(finalists)} finalists")
    # The search optimised the fitness latents: check the pick against the uniform config on fresh ones.
    test = SubnetFitness(G, n=held_out, seed=seed + 2, perceptual=fitness.perceptual, impl=impl)
    summary_held_out = {"seed": seed + 2, "n": held_out, "best": test(best.candidate),
                        "nearest_uniform": test(nearest.candidate) if nearest else None,
                        "versus_uniform": paired_difference(test.distances(best.candidate),
                                                            test.distances(nearest.candidate)) if nearest else None}
    summary = {
        "kind": "anycost-search", "version": 1, "budget": budget, "cost": space.cost_name,
        "budget_macs": macs_limit, "budget_ms": budget_ms, "resolution": resolution, "metric": fitness.metric,
        "samples": n, "seed": seed, "generations": result.generations, "evaluated": len(result.history),
        "full": {"config": full.to_dict(), "macs": full.macs, "cost": space.cost(full)},
        "best": _entry(best, table), "nearest_uniform": _entry(nearest, table) if nearest else None,
        "uniform_at_equal_cost": comparison, "validation": validation, "held_out": summary_held_out,
        "pareto": [_entry(e, table) for e in result.pareto()],
    }
    (out / "best.json").write_text(json.dumps(best.candidate.to_dict(), indent=1))
    (out / "pareto.json").write_text(json.dumps(summary, indent=1))
    plot_pareto(result.history, result.pareto(), uniform_eval, best, budget, out / "pareto.png", cost_label,
                fitness.metric, scale)
    return summary

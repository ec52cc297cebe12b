"""The `anycost search` run: search one resolution of a generator under a MACs and/or latency budget, pick the
result on validation latents, compare it with the uniform config on held-out ones, write the reports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from anycost.checks import check_int
from anycost.images import pyplot
from anycost.search.budget import CostModel, evolve_in, load_or_measure_table, validation_pick
from anycost.search.evolution import Evaluated, check_budget
from anycost.search.fitness import SubnetFitness, paired_difference
from anycost.search.space import SEARCH_RATIOS


def parse_macs_budget(text, full_macs: int) -> float:
    """'0.5' -> half of `full_macs`; '90M', '0.09G', '2e7', '12000' -> absolute MACs.

    A bare number is a fraction when it is in (0, 1]; above 1 it must be a count a generator could have (at
    least 1,000 MACs), so that '2' or '50' (a ratio or a percentage typed by mistake) is an error, not a budget
    of 2 MACs that nothing fits.
    """
    units = {"K": 1e3, "M": 1e6, "G": 1e9}
    s = str(text).strip().upper()
    hint = "use a fraction of the full model's MACs (0.5) or MACs with a unit (90M, 0.09G)"
    try:
        if s and s[-1] in units:
            value = float(s[:-1]) * units[s[-1]]
        else:
            value = float(s)
            if 1 < value < 1e3:
                raise ValueError(f"MACs budget {text!r} is neither a fraction in (0, 1] nor a MAC count: {hint}")
            value = value * full_macs if 0 < value <= 1 else value
    except ValueError as err:
        raise ValueError(str(err) if "neither" in str(err) else f"bad MACs budget {text!r}: {hint}") from None
    return check_budget("MACs budget", value)


def _entry(e: Evaluated, table=None) -> dict:
    c = e.candidate
    out = {"config": c.to_dict(), "describe": c.describe(), "macs": c.macs, "cost": e.cost, "fitness": e.fitness,
           "generation": e.generation, "ratios": [round(r, 4) for r in c.ratios]}
    if table is not None:
        out["latency_ms"] = table.predict(c)
    return out


def plot_pareto(history: Sequence[Evaluated], front: Sequence[Evaluated], uniform: Sequence[Evaluated],
                best: Evaluated, budget: float, path, cost_label: str, metric: str, scale: float = 1.0,
                ylabel: str = "distance to the full output (lower is better)") -> Path | None:
    """Cost vs fitness of every evaluated config, the Pareto front, the uniform configs and the pick (None when
    matplotlib is missing)."""
    plt = pyplot()
    if plt is None:
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
    ax.set_ylabel(ylabel)
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
    budget enter the initial population unless `seed_uniform` is False. Every argument is checked before
    `out` is created, so a refused search leaves no folder behind; state.json is kept after every generation.

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
    from anycost.models.stylegan2 import SubnetConfig

    if budget_macs is None and budget_ms is None:
        raise ValueError("give a MACs budget, a latency budget, or both")
    check_int("validate", validate, 0)
    check_int("held_out", held_out, 1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder: give a folder for the search's outputs")
    resolution = G.arch.resolution if resolution is None else resolution
    full = SubnetConfig.full(G.arch, resolution)
    macs_limit = parse_macs_budget(budget_macs, full.macs) if budget_macs is not None else None
    if budget_ms is not None:
        budget_ms = check_budget("latency budget (ms)", budget_ms)
    cost = _cost_model(G, out, tuple(ratios), resolution, macs_limit, budget_ms, latency_table, impl, progress, log)
    fitness = SubnetFitness(G, n=n, seed=seed, perceptual=None if perceptual == "mse" else perceptual, impl=impl)
    log(f"search space: {cost.space.size()} configs at {resolution} px; budget {cost.budget / cost.scale:.4g} "
        f"{'ms' if budget_ms is not None else 'GMACs'} (full: {cost.space.cost(full) / cost.scale:.4g}); fitness: "
        f"{fitness.metric} on {n} latents (seed {seed})")
    result, evaluated, uniform_eval, fits = evolve_in(
        cost, fitness, out / "state.json", seed_uniform=seed_uniform, population=population, generations=generations,
        parents=parents, n_crossover=n_crossover, n_mutation=n_mutation, p_mutation=p_mutation, seed=seed,
        resume=resume, progress=progress)
    nearest = max(fits, key=lambda e: e.cost) if fits else None
    best, validation = result.best, None
    if validate:
        best, validation = _validate(G, result, fits, evaluated, fitness,
                                     cost, validate, seed + 1, impl, log)
    summary = {
        "kind": "anycost-search", "version": 1, "budget": cost.budget, "cost": cost.space.cost_name,
        "budget_macs": macs_limit, "budget_ms": budget_ms, "resolution": resolution, "metric": fitness.metric,
        "samples": n, "seed": seed, "generations": result.generations, "evaluated": len(result.history),
        "full": {"config": full.to_dict(), "macs": full.macs, "cost": cost.space.cost(full)},
        "best": _entry(best, cost.table), "nearest_uniform": _entry(nearest, cost.table) if nearest else None,
        "uniform_at_equal_cost": [{"uniform": _entry(u, cost.table),
                                   "searched": _entry(s, cost.table) if (s := result.best_under(u.cost)) else None}
                                  for u in fits],
        "validation": validation,
        "held_out": _held_out(G, best, nearest, fitness, held_out, seed + 2, impl),
        "pareto": [_entry(e, cost.table) for e in result.pareto()],
    }
    (out / "best.json").write_text(json.dumps(best.candidate.to_dict(), indent=1))
    (out / "pareto.json").write_text(json.dumps(summary, indent=1))
    plot_pareto(result.history, result.pareto(), uniform_eval, best, cost.budget, out / "pareto.png",
                cost.label, fitness.metric, cost.scale)
    return summary


def _cost_model(G, out: Path, ratios, resolution, macs_limit, budget_ms, latency_table, impl, progress, log):
    """The `budget.CostModel` of a search of `G` at `resolution`: MACs, or latency predicted by a per-layer
    table (given, out/latency.json, or measured now) that must cover every width of `ratios`."""
    from anycost.search.latency import LatencyTable, measure_latency_table, missing_keys
    from anycost.search.space import GeneratorSpace

    table = None
    if budget_ms is not None:
        def measure():
            log(f"measuring the per-layer latency table ({torch.get_num_threads()} thread(s), impl={impl}) ...")
            return measure_latency_table(G, ratios, resolution=resolution, impl=impl, progress=progress)

        table = latency_table if isinstance(latency_table, LatencyTable) else \
            load_or_measure_table(out, latency_table, LatencyTable.load, measure, log)
        missing = missing_keys(table, ratios, resolution)
        if missing:
            raise ValueError(f"the latency table lacks {len(missing)} layer(s) that widths of ratios {list(ratios)} "
                             f"can need (e.g. {missing[0]}): measure one with these ratios (anycost search does "
                             f"when no --latency-table is given and OUT/latency.json is absent)")

    def make_space(cost):
        return GeneratorSpace(G.arch, (resolution,), ratios=ratios, cost="macs" if cost is None else cost)

    return CostModel(make_space, macs_limit, budget_ms, table, macs_of=lambda c: float(c.macs),
                     macs_label="true GMACs (batch 1)", macs_scale=1e9)


def _validate(G, result, fits, evaluated, fitness, cost, n: int, seed: int, impl: str, log):
    """(pick, report): the final parents and the uniform configs within budget measured again on `n` latents the
    search never saw; the best of them there is the pick."""
    check = SubnetFitness(G, n=n, seed=seed, perceptual=fitness.perceptual, impl=impl)
    best, scored = validation_pick(result, fits, evaluated, check, cost.space)
    report = {"seed": seed, "n": n, "search_best": _entry(result.best, cost.table),
              "finalists": [{"describe": c.describe(), "widths": list(c.widths), "cost": c_cost,
                             "fitness": fitness(c), "validation": value} for value, c_cost, c in scored]}
    log(f"validation on {n} other latents (seed {seed}): picked {best.candidate.describe()} "
        f"from {len(scored)} finalists")
    return best, report


def _held_out(G, best, nearest, fitness, n: int, seed: int, impl: str) -> dict:
    """The pick and the largest uniform config within budget on a third set of latents, compared latent by latent
    (the search optimised the fitness latents, the validation chose on the second set)."""
    test = SubnetFitness(G, n=n, seed=seed, perceptual=fitness.perceptual, impl=impl)
    return {"seed": seed, "n": n, "best": test(best.candidate),
            "nearest_uniform": test(nearest.candidate) if nearest else None,
            "versus_uniform": paired_difference(test.distances(best.candidate),
                                                test.distances(nearest.candidate)) if nearest else None}

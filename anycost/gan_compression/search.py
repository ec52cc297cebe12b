"""The GAN Compression search: the best sub-network of a trained once-for-all supernet under a MACs budget.

As in the paper, candidates are evaluated as they are, with the supernet's weights and no retraining
(`fitness.SubnetQuality` on validation pairs); the evolutionary search is the project's (`search.evolve`, over
`space.I2ISpace`). The chosen sub-network is then fine-tuned (`finetune`). `run_search` writes best.json (the
`I2IConfig`), pareto.json (the summary: budget, the pick, the uniform sub-networks beside the best searched one
of at most their cost, the Pareto front), pareto.png and state.json (the resumable evolution state).
"""

from __future__ import annotations

import json
from pathlib import Path

from anycost.checks import check_int
from anycost.fileio import atomic_write
from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.distill import STUDENT_FILES, load_teacher
from anycost.gan_compression.fitness import SubnetQuality, reference_images
from anycost.gan_compression.space import I2ISpace
from anycost.gan_compression.tasks import validation_pairs
from anycost.models.i2i import I2IConfig, I2IGenerator, load_generator
from anycost.search.evolution import Evaluated, evolve
from anycost.search.run import parse_macs_budget, plot_pareto

MAC_COSTS = {"macs": "true MACs", "paper_macs": "MACs as the paper counts them"}


def load_supernet(folder) -> tuple[I2IGenerator, RunConfig]:
    """A supernet run's generator (its supernet.safetensors) and the run's config."""
    folder = Path(folder)
    path, config = folder / STUDENT_FILES["supernet"], folder / "config.json"
    if not path.is_file() or not config.is_file():
        raise FileNotFoundError(f"no {path.name} and config.json in {folder}: give the folder of a finished "
                                "supernet run (anycost gan-compression distill --supernet)")
    cfg = RunConfig.from_json(config.read_text())
    if cfg.role != "supernet":
        raise ValueError(f"{folder} is a {cfg.role} run, not a supernet run")
    return load_generator(path).requires_grad_(False), cfg


def config_in(arch, data) -> I2IConfig:
    """The sub-network of supernet `arch` that `data` (an `I2IConfig` JSON object, e.g. best.json) describes;
    a one-line ValueError when it belongs to another generator or a width is above the supernet's."""
    if not isinstance(data, dict) or not isinstance(data.get("widths"), list):
        raise ValueError("a sub-network config is a JSON object with a list of widths (search's best.json)")
    other = {k: v for k, v in (data.get("arch") or {}).items() if k != "widths"}
    mine = {k: v for k, v in arch.to_dict().items() if k != "widths"}
    if other and other != mine:
        changed = sorted(k for k in mine if other.get(k) != mine[k])
        raise ValueError(f"the config is for another generator (it differs from the supernet in {changed})")
    return I2IConfig(arch, tuple(data["widths"]))


def _entry(e: Evaluated) -> dict:
    c = e.candidate
    return {"widths": list(c.widths), "describe": c.describe(), "macs": c.macs, "paper_macs": c.paper_macs,
            "params": c.params, "cost": e.cost, "fitness": e.fitness, "generation": e.generation}


def run_search(supernet_dir, out, *, budget_macs, cost: str = "macs", grouping: str = "layer", n: int = 256,
               metric: str = "l1", reference: str = "target", perceptual=None, extractor=None,
               population: int = 50, generations: int = 20, parents: int = 10, n_crossover: int = 25,
               n_mutation: int = 25, p_mutation: float = 0.1, seed: int = 0, seed_uniform: bool = True,
               resume: bool = False, progress: bool = True, log=print) -> dict:
    """Search the sub-networks of the supernet run in `supernet_dir` under `budget_macs` (a fraction of the
    full supernet's or a count, `search.run.parse_macs_budget`, in the `cost` convention: "macs" or
    "paper_macs"); write best.json, pareto.json, pareto.png and state.json into `out` and return the summary.

    Fitness: `SubnetQuality` with `metric` against `reference` on the first `n` validation pairs of the run's
    task. The uniform sub-networks within budget enter the first generation unless `seed_uniform` is False.
    Every argument is checked, and a budget below the smallest sub-network refused, before `out` is created."""
    if cost not in MAC_COSTS:
        raise ValueError(f"cost must be one of {tuple(MAC_COSTS)}, got {cost!r}")
    check_int("n", n, 1)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder: give a folder for the search's outputs")
    G, cfg = load_supernet(supernet_dir)
    space = I2ISpace(G.arch, cost=cost, grouping=grouping)
    full = I2IConfig.full(G.arch)
    budget = parse_macs_budget(budget_macs, space.cost(full))
    low = space.cost(space.cheapest())
    if budget < low:
        raise ValueError(f"MACs budget {budget:.4g} is below the smallest sub-network's {low:.4g} ({cost})")
    inputs, targets = validation_pairs(cfg.task, n)
    teacher = load_teacher(cfg.teacher)[0] if reference == "teacher" else None
    fitness = SubnetQuality(G, inputs, reference_images(reference, targets, inputs, teacher), metric=metric,
                            perceptual=perceptual, extractor=extractor, reference=reference, task=cfg.task)
    uniform = space.uniform_configs()
    log(f"search space: {space.size()} sub-networks of {G.arch.describe()} ({grouping} grouping); budget "
        f"{budget / 1e6:.4g} M {MAC_COSTS[cost]} (full: {space.cost(full) / 1e6:.4g} M); fitness: {fitness.name} "
        f"on {n} validation pairs of {cfg.task}")
    out.mkdir(parents=True, exist_ok=True)
    result = evolve(space, fitness, budget, population=population, generations=generations, parents=parents,
                    n_crossover=n_crossover, n_mutation=n_mutation, p_mutation=p_mutation, seed=seed,
                    initial=[c for c in uniform if space.cost(c) <= budget] if seed_uniform else (),
                    state_path=out / "state.json", resume=resume, progress=progress)
    known = {e.candidate: e for e in result.history}
    uniform_eval = [known.get(c) or Evaluated(c, space.cost(c), fitness(c), -1) for c in uniform]
    summary = {
        "kind": "anycost-gan-compression-search", "version": 1, "supernet": str(Path(supernet_dir).resolve()),
        "task": cfg.task, "budget": budget, "cost": cost, "grouping": grouping, "metric": fitness.name,
        "samples": n, "seed": seed, "generations": result.generations, "evaluated": len(result.history),
        "full": {"widths": list(full.widths), "macs": full.macs, "paper_macs": full.paper_macs,
                 "fitness": fitness(full)},
        "best": _entry(result.best),
        "uniform_at_equal_cost": [{"uniform": _entry(u), "searched": _entry(s) if (s := result.best_under(u.cost))
                                   else None} for u in uniform_eval if u.cost <= budget],
        "pareto": [_entry(e) for e in result.pareto()],
    }
    best_text = json.dumps(result.best.candidate.to_dict(), indent=1)
    atomic_write(out / "best.json", lambda tmp: Path(tmp).write_text(best_text))
    atomic_write(out / "pareto.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    plot_pareto(result.history, result.pareto(), uniform_eval, result.best, budget, out / "pareto.png",
                f"{MAC_COSTS[cost]} (M)", fitness.name, 1e6, ylabel=f"{fitness.name} (lower is better)")
    return summary

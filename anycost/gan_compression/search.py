"""The GAN Compression search: the best sub-network of a trained once-for-all supernet under a MACs and/or a
predicted latency budget.

As in the paper, candidates are evaluated as they are, with the supernet's weights and no retraining
(`fitness.SubnetQuality` on validation pairs); the evolutionary search is the project's (`search.evolve`, over
`space.I2ISpace`), and so are the cost model, the latency table's reuse and the pick on a second set of pairs
(`search.budget`, shared with `anycost search`). The chosen sub-network is then fine-tuned (`finetune`).
`run_search` writes best.json (the `I2IConfig`), pareto.json (the summary: budget, the pick, the search's own
best and the finalists on the second set, the uniform sub-networks beside the best searched one of at most their
cost, the Pareto front), pareto.png, state.json (the resumable evolution state) and a measured latency.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from anycost.checks import check_int
from anycost.fileio import atomic_write
from anycost.gan_compression.config import RunConfig
from anycost.gan_compression.distill import STUDENT_FILES, load_teacher
from anycost.gan_compression.fitness import SubnetQuality, reference_images
from anycost.gan_compression.latency import I2ILatencyTable, measure_i2i_latency, table_specs
from anycost.gan_compression.space import I2ISpace
from anycost.gan_compression.tasks import get_task, validation_inputs, validation_pairs
from anycost.models.i2i import I2IConfig, I2IGenerator, load_generator
from anycost.search.budget import CostModel, evolve_in, load_or_measure_table, validation_pick
from anycost.search.evolution import Evaluated, check_budget
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


def _entry(e: Evaluated, table=None) -> dict:
    c = e.candidate
    out = {"widths": list(c.widths), "describe": c.describe(), "macs": c.macs, "paper_macs": c.paper_macs,
           "params": c.params, "cost": e.cost, "fitness": e.fitness, "generation": e.generation}
    if table is not None:
        out["latency_ms"] = table.predict(c)
    return out


def _cost_model(G, out: Path, cost: str, grouping: str, macs_limit, budget_ms, latency_table, log) -> CostModel:
    """The space and budget: MACs in the `cost` convention, or (with `budget_ms`) the latency predicted by a
    per-conv table of this supernet (`latency_table`: a table or a JSON path; default out/latency.json if
    present, else measured now and saved there) with the MACs limit, if any, as a constraint."""
    table = None
    if budget_ms is not None:
        def measure():
            log(f"measuring the per-conv latency table ({torch.get_num_threads()} thread(s)) ...")
            return measure_i2i_latency(G)

        table = latency_table if isinstance(latency_table, I2ILatencyTable) else \
            load_or_measure_table(out, latency_table, I2ILatencyTable.load, measure, log)
        if table.arch != G.arch:
            raise ValueError(f"the latency table is for {table.arch.describe()}, the supernet is "
                             f"{G.arch.describe()}: measure one of this supernet (no --latency-table)")
        missing = [k for k in table_specs(G.arch) if k not in table.entries]
        if missing:
            raise ValueError(f"the latency table lacks {len(missing)} conv(s) of this supernet (e.g. {missing[0]}): "
                             "measure a complete one (no --latency-table)")
    return CostModel(lambda t: I2ISpace(G.arch, cost=cost if t is None else t, grouping=grouping), macs_limit,
                     budget_ms, table, macs_of=lambda c: float(getattr(c, cost)),
                     macs_label=f"{MAC_COSTS[cost]} (M)", macs_scale=1e6)


def _quality(G, cfg, n: int, offset: int, *, metric: str, reference: str, perceptual, extractor,
             teacher) -> SubnetQuality:
    """`SubnetQuality` on `n` validation pairs (inputs, with `reference` "teacher") of the run's task from the
    `offset`-th on."""
    if reference == "teacher":
        inputs, targets = validation_inputs(cfg.task, n, offset), None
    else:
        inputs, targets = validation_pairs(cfg.task, n, offset)
    return SubnetQuality(G, inputs, reference_images(reference, targets, inputs, teacher), metric=metric,
                         perceptual=perceptual, extractor=extractor, reference=reference, task=cfg.task)


def _validate(result, fits, evaluated, fitness, check, model, log) -> tuple[Evaluated, dict]:
    """(pick, report): the final parents and the uniform sub-networks within budget measured on the `check`
    pairs, which the search never saw; the best of them there is the pick (`search.budget.validation_pick`)."""
    best, scored = validation_pick(result, fits, evaluated, check, model.space)
    report = {"n": len(check.inputs), "offset": len(fitness.inputs), "search_best": _entry(result.best, model.table),
              "finalists": [{"describe": c.describe(), "widths": list(c.widths), "cost": c_cost,
                             "fitness": fitness(c), "validation": value} for value, c_cost, c in scored]}
    log(f"validation on {len(check.inputs)} other pairs: picked {best.candidate.describe()} from {len(scored)} "
        "finalists")
    return best, report


def run_search(supernet_dir, out, *, budget_macs=None, budget_ms: float | None = None, latency_table=None,
               cost: str = "macs", grouping: str = "layer", n: int = 256, validate: int = 256, metric: str = "l1",
               reference: str | None = None, perceptual=None, extractor=None, population: int = 50,
               generations: int = 20, parents: int = 10, n_crossover: int = 25, n_mutation: int = 25,
               p_mutation: float = 0.1, seed: int = 0, seed_uniform: bool = True, resume: bool = False,
               progress: bool = True, log=print) -> dict:
    """Search the sub-networks of the supernet run in `supernet_dir` under a MACs and/or latency budget; write
    best.json (the pick), pareto.json (the summary, returned), pareto.png and state.json (and latency.json when
    a table is measured) into `out`.

    `budget_macs`: a fraction of the full supernet's MACs or a count (`search.run.parse_macs_budget`) in the
    `cost` convention ("macs" or "paper_macs"). `budget_ms`: the latency predicted by a per-conv table (see
    `_cost_model`); with both, the latency is the searched cost and the MACs a constraint.

    Fitness: `SubnetQuality` with `metric` against `reference` ("target", or "teacher": the teacher's outputs;
    default: "target" on a paired task, "teacher" on an unpaired one, which has no targets) on validation pairs
    (an unpaired task: validation A images) 0..n-1 of the run's task. An
    evolution that ranks hundreds of sub-networks on them also selects for their noise, so with `validate` > 0
    the final parents and the uniform sub-networks within budget are measured again on pairs n..n+validate-1
    and the best there is the pick (``validation`` in the summary holds the search's own best too). The uniform
    sub-networks within budget enter the first generation unless `seed_uniform` is False. Every argument is
    checked, and a budget below the smallest sub-network refused, before `out` is created (a measured table
    aside, which is saved there)."""
    if cost not in MAC_COSTS:
        raise ValueError(f"cost must be one of {tuple(MAC_COSTS)}, got {cost!r}")
    if budget_macs is None and budget_ms is None:
        raise ValueError("give a MACs budget, a latency budget, or both")
    check_int("n", n, 1)
    check_int("validate", validate, 0)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder: give a folder for the search's outputs")
    G, cfg = load_supernet(supernet_dir)
    paired = get_task(cfg.task).paired
    reference = reference or ("target" if paired else "teacher")
    if reference == "target" and not paired:
        raise ValueError(f"task {cfg.task} is unpaired: it has no targets to judge sub-networks by; compare them "
                         "with the teacher's outputs (reference 'teacher')")
    full = I2IConfig.full(G.arch)
    macs_limit = parse_macs_budget(budget_macs, getattr(full, cost)) if budget_macs is not None else None
    if budget_ms is not None:
        budget_ms = check_budget("latency budget (ms)", budget_ms)
    teacher = load_teacher(cfg.teacher)[0] if reference == "teacher" else None
    options = dict(metric=metric, reference=reference, perceptual=perceptual, extractor=extractor, teacher=teacher)
    fitness = _quality(G, cfg, n, 0, **options)
    if validate:  # the same distance (and perceptual or Inception network) on the pairs after the search's
        options.update(perceptual=fitness.perceptual, extractor=fitness.extractor)
        check = _quality(G, cfg, validate, n, **options)
    model = _cost_model(G, out, cost, grouping, macs_limit, budget_ms, latency_table, log)
    model.check_reachable("ms" if budget_ms is not None else MAC_COSTS[cost])
    log(f"search space: {model.space.size()} sub-networks of {G.arch.describe()} ({grouping} grouping); budget "
        f"{model.budget / model.scale:.4g} {'ms' if budget_ms is not None else 'M ' + MAC_COSTS[cost]} (full: "
        f"{model.space.cost(full) / model.scale:.4g}); fitness: {fitness.name} on {n} validation pairs of {cfg.task}")
    out.mkdir(parents=True, exist_ok=True)
    result, evaluated, uniform_eval, fits = evolve_in(
        model, fitness, out / "state.json", seed_uniform=seed_uniform, population=population,
        generations=generations, parents=parents, n_crossover=n_crossover, n_mutation=n_mutation,
        p_mutation=p_mutation, seed=seed, resume=resume, progress=progress)
    best, validation = result.best, None
    if validate:
        best, validation = _validate(result, fits, evaluated, fitness,
                                     check, model, log)
    summary = _summary(supernet_dir, cfg, model, result, best, validation, fits, fitness,
                       {"macs_count": cost, "budget_macs": macs_limit, "budget_ms": budget_ms, "grouping": grouping,
                        "seed": seed})
    _write(out, best, summary)
    plot_pareto(result.history, result.pareto(), uniform_eval, best, model.budget, out / "pareto.png", model.label,
                fitness.name, model.scale, ylabel=f"{fitness.name} (lower is better)")
    return summary


def _summary(supernet_dir, cfg, model: CostModel, result, best: Evaluated, validation, fits, fitness,
             settings: dict) -> dict:
    """pareto.json: the budget and `settings`, the full supernet, the pick (`best`), the `validation` report, the
    uniform sub-networks within budget beside the best searched one of at most their cost, the Pareto front."""
    full = I2IConfig.full(model.space.arch)
    return {
        "kind": "anycost-gan-compression-search", "version": 1, "supernet": str(Path(supernet_dir).resolve()),
        "task": cfg.task, "budget": model.budget, "cost": model.space.cost_name, **settings,
        "metric": fitness.name, "samples": len(fitness.inputs), "generations": result.generations,
        "evaluated": len(result.history),
        "full": {"widths": list(full.widths), "macs": full.macs, "paper_macs": full.paper_macs,
                 "cost": model.space.cost(full), "fitness": fitness(full)},
        "best": _entry(best, model.table), "validation": validation,
        "uniform_at_equal_cost": [{"uniform": _entry(u, model.table), "searched": _entry(s, model.table)
                                   if (s := result.best_under(u.cost)) else None} for u in fits],
        "pareto": [_entry(e, model.table) for e in result.pareto()],
    }


def _write(out: Path, best: Evaluated, summary: dict) -> None:
    """best.json (the pick's `I2IConfig`) and pareto.json (the summary), each written atomically."""
    best_text, summary_text = json.dumps(best.candidate.to_dict(), indent=1), json.dumps(summary, indent=1)
    atomic_write(out / "best.json", lambda tmp: Path(tmp).write_text(best_text))
    atomic_write(out / "pareto.json", lambda tmp: Path(tmp).write_text(summary_text))

"""What both searches (`anycost search` and `anycost gan-compression search`) share around `evolve`: the cost
and budget (MACs, or a predicted latency with the MACs as an extra constraint), the latency table measured once
per run folder, and the pick made again on a second evaluation set.

Each family brings its own space, table type and fitness; these helpers only decide which cost is searched,
where the table comes from, and which finalist wins on the second set.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from anycost.search.evolution import Evaluated, evolve
from anycost.search.space import canonical


class CostModel:
    """The space a search runs in, its budget and extra constraints, and how the plot labels the cost.

    `make_space(table)` builds the space: with ``None`` its cost is the MACs, with a latency table its cost is the
    table's predicted ms. With `budget_ms` the latency is the searched cost and `macs_limit` (when given) an extra
    constraint on `macs_of(config)`; without it the MACs are the cost and `macs_limit` the budget."""

    def __init__(self, make_space: Callable, macs_limit: float | None, budget_ms: float | None, table=None, *,
                 macs_of: Callable[[object], float], macs_label: str, macs_scale: float):
        if budget_ms is None:
            self.space, self.table, self.budget = make_space(None), None, macs_limit
            self.label, self.scale, self.constraints = macs_label, macs_scale, []
            return
        self.space, self.table, self.budget = make_space(table), table, budget_ms
        self.label, self.scale = "predicted latency (ms, batch 1)", 1.0
        self.constraints = [("MACs", macs_of, macs_limit)] if macs_limit is not None else []

    def within(self, config) -> bool:
        return self.space.cost(config) <= self.budget and all(fn(config) <= lim for _, fn, lim in self.constraints)

    def check_reachable(self, unit: str) -> None:
        """A one-line ValueError when even the space's cheapest config is over the budget or a constraint (the
        cheapest is the fewest MACs; for a sane table also the fastest)."""
        low = self.space.cheapest()
        cost = self.space.cost(low)
        if self.budget < cost:
            raise ValueError(f"budget {self.budget:.4g} {unit} is below the smallest sub-network's {cost:.4g} {unit}")
        for name, fn, limit in self.constraints:
            if limit < fn(low):
                raise ValueError(f"{name} limit {limit:.4g} is below the smallest sub-network's {fn(low):.4g}")


def load_or_measure_table(out: Path, path, load: Callable, measure: Callable, log=print):
    """The latency table at `path` (default: ``out/latency.json``, so a resumed run reuses the table it measured)
    loaded by `load`, else (no `path` given) one measured now by `measure()` and saved there."""
    table_path = Path(path) if path is not None else Path(out) / "latency.json"
    if table_path.is_file():
        table = load(table_path)
        log(f"latency table: {table_path} ({len(table.entries)} layers, {table.threads} thread(s))")
        return table
    if path is not None:
        raise FileNotFoundError(f"no latency table at {path}")
    table = measure()
    table.save(table_path)
    log(f"wrote {table_path}")
    return table


def validation_pick(result, fits, evaluated: dict, check: Callable, space):
    """The final parents of `result` and the configs of `fits` (the uniform ones within budget), each measured by
    `check` (the fitness on a second set the search never saw). Returns (the best there, as its `Evaluated` from
    `evaluated`; [(value there, cost, config)] best first). Ties go to the cheaper config, then the encoding."""
    finalists = list(dict.fromkeys([e.candidate for e in result.parents] + [e.candidate for e in fits]))
    scored = sorted(((check(c), space.cost(c), canonical(space.encode(c)), c) for c in finalists),
                    key=lambda t: t[:3])
    return evaluated[scored[0][3]], [(value, cost, c) for value, cost, _, c in scored]


def evolve_in(model: CostModel, fitness: Callable, state_path: Path, *, seed_uniform: bool = True, **options):
    """`evolve` over `model`'s space under its budget and constraints (the uniform configs within budget in the
    first generation unless `seed_uniform` is False), then every uniform config scored too.

    Returns (result, evaluated, uniform, fits): the `SearchResult`, every scored candidate by config, the uniform
    configs scored (the plot shows them) and those of them within budget (the report compares the pick with them).
    """
    uniform = model.space.uniform_configs()
    result = evolve(model.space, fitness, model.budget, constraints=model.constraints,
                    initial=[c for c in uniform if model.within(c)] if seed_uniform else (), state_path=state_path,
                    **options)
    evaluated = {e.candidate: e for e in result.history}
    for c in uniform:
        if c not in evaluated:  # generation -1: scored for the report, never part of the evolution
            evaluated[c] = Evaluated(c, model.space.cost(c), fitness(c), -1)
    scored = [evaluated[c] for c in uniform]
    return result, evaluated, scored, [e for e in scored if model.within(e.candidate)]

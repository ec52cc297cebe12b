"""Evolutionary search: finds a known optimum, respects the budget, is deterministic and resumable."""

import itertools
import json
import math

import pytest
import torch

from anycost.cli import main
from anycost.metrics import subnet_consistency
from anycost.models.stylegan2 import SubnetConfig
from anycost.search import ChoiceSpace, GeneratorSpace, SubnetFitness, evolve, paired_difference
from anycost.search.latency import LatencyTable, missing_keys
from anycost.search.run import parse_macs_budget
from anycost.search.space import SEARCH_RATIOS

# A separable knapsack-like problem: position i costs PRICE[i] per unit and loses VALUE[i] * (3 - x)^1.5 of fitness.
VALUE = (5, 1, 4, 2, 7, 3)
PRICE = (3, 1, 5, 2, 4, 1)
CHOICES = [(0, 1, 2, 3)] * 6
BUDGET = 25.0
SMALL = dict(population=12, generations=4, parents=4, n_crossover=5, n_mutation=5)


def cost(c):
    return float(sum(p * x for p, x in zip(PRICE, c)))


def fitness(c):
    return float(sum(v * (3 - x) ** 1.5 for v, x in zip(VALUE, c)))


@pytest.fixture
def space():
    return ChoiceSpace(CHOICES, cost)


def brute_force(budget):
    return min((c for c in itertools.product(*CHOICES) if cost(c) <= budget), key=lambda c: (fitness(c), cost(c)))


@pytest.mark.parametrize("seed", [0, 1])
def test_finds_the_known_optimum_with_paper_defaults(space, seed):
    best = brute_force(BUDGET)
    result = evolve(space, fitness, BUDGET, seed=seed)  # population 50, 20 generations, top 10, 25 + 25, p 0.1
    assert result.best.candidate == best and result.best.fitness == fitness(best)
    assert result.generations == 20
    assert len(result.history) == len({e.candidate for e in result.history})  # each evaluated once


def test_budget_respected_and_pareto_front(space):
    for budget in (3.0, 10.0, BUDGET):
        result = evolve(space, fitness, budget, seed=2, **SMALL)
        assert all(e.cost <= budget for e in result.history)
        assert all(e.cost <= budget for e in result.parents) and result.best == result.parents[0]
        assert [e.fitness for e in result.parents] == sorted(e.fitness for e in result.parents)
        front = result.pareto()
        assert [e.cost for e in front] == sorted(e.cost for e in front)
        for e in result.history:  # nothing evaluated dominates a front point
            assert not any(e.cost <= f.cost and e.fitness < f.fitness for f in front)
        assert result.best_under(budget) == result.best
    tight = evolve(space, fitness, 0.5, seed=0, **SMALL)  # only the all-zero candidate fits
    assert tight.best.candidate == (0,) * 6 and len(tight.history) == 1
    extra = evolve(space, fitness, BUDGET, seed=0, constraints=[("first", lambda c: c[0], 1)], **SMALL)
    assert all(e.candidate[0] <= 1 for e in extra.history)


def test_deterministic_given_the_seed(space):
    runs = [evolve(space, fitness, BUDGET, seed=s, **SMALL) for s in (5, 5, 6)]
    assert runs[0].history == runs[1].history and runs[0].parents == runs[1].parents
    assert runs[0].history != runs[2].history


def test_resume_equals_uninterrupted(space, tmp_path):
    full = evolve(space, fitness, BUDGET, seed=3, **SMALL)

    calls = {"n": 0}

    def crashing(c):  # dies in the middle of generation 2
        calls["n"] += 1
        if calls["n"] > 12 + 10 + 4:
            raise KeyboardInterrupt
        return fitness(c)

    state = tmp_path / "state.json"
    with pytest.raises(KeyboardInterrupt):
        evolve(space, crashing, BUDGET, seed=3, state_path=state, **SMALL)
    saved = json.loads(state.read_text())
    assert saved["generation"] == 1 and not list(tmp_path.glob(".*tmp"))
    resumed = evolve(space, fitness, BUDGET, seed=3, state_path=state, resume=True, **SMALL)
    assert resumed.history == full.history and resumed.parents == full.parents
    assert json.loads(state.read_text())["generation"] == SMALL["generations"]

    # a finished run extended to more generations equals a longer run
    longer = dict(SMALL, generations=6)
    assert evolve(space, fitness, BUDGET, seed=3, state_path=state, resume=True, **longer).history == \
        evolve(space, fitness, BUDGET, seed=3, **longer).history
    with pytest.raises(ValueError, match="settings differ.*budget"):
        evolve(space, fitness, 20.0, seed=3, state_path=state, resume=True, **SMALL)
    # resume without a state file starts afresh
    assert evolve(space, fitness, BUDGET, seed=3, state_path=tmp_path / "new.json", resume=True,
                  **SMALL).history == full.history


def test_bad_arguments(space):
    for budget in (0, -1.0, math.nan, math.inf, "1"):
        with pytest.raises(ValueError, match="budget"):
            evolve(space, fitness, budget)
    with pytest.raises(ValueError, match="below the cost of the cheapest"):
        evolve(ChoiceSpace([(1, 2)] * 3), fitness, 2.0)
    for bad in (dict(population=0), dict(parents=0), dict(parents=60), dict(generations=-1), dict(p_mutation=1.5),
                dict(n_crossover=-1), dict(max_tries=0), dict(seed=-2), dict(population=2.5), dict(resume=True)):
        with pytest.raises(ValueError):
            evolve(space, fitness, BUDGET, **bad)
    with pytest.raises(ValueError, match="limit"):
        evolve(space, fitness, BUDGET, constraints=[("first", lambda c: c[0] + 1, 0.5)])
    with pytest.raises(ValueError, match="fitness returned nan"):
        evolve(space, lambda c: math.nan, BUDGET, **SMALL)


# -- the Anycost fitness and space ---------------------------------------------------------------------
class MeanAbs(torch.nn.Module):
    """A cheap stand-in perceptual distance d(x, y) -> [N]."""

    name = "mean-abs"

    def forward(self, x, y):
        return (x - y).abs().mean((1, 2, 3))


def test_subnet_fitness_matches_subnet_consistency(tiny_generator):
    G = tiny_generator
    configs = [G.subnet(ratio=0.5), G.subnet(resolution=16, ratio=0.25)]
    fit = SubnetFitness(G, n=3, seed=4, perceptual=MeanAbs(), batch=2)
    rows = subnet_consistency(G, configs, n=3, seed=4, perceptual=MeanAbs(), batch=2)
    for config, row in zip(configs, rows):
        assert fit(config) == pytest.approx(row.perceptual, rel=1e-6)
    mse = SubnetFitness(G, n=3, seed=4, perceptual=None, batch=2)
    assert mse(configs[0]) == pytest.approx(rows[0].mse, rel=1e-6) and mse.metric == "mse"
    assert fit(G.full_config) == 0 and configs[0] in fit.cache
    assert fit.spec()["metric"] == "mean-abs"
    per_sample = fit.distances(configs[1])  # one value per latent, across batches (3 = 2 + 1)
    assert per_sample.shape == (3,) and per_sample.dtype == torch.float64
    assert per_sample.mean().item() == fit(configs[1]) and len(set(per_sample.tolist())) == 3


def test_paired_difference():
    a, b = torch.tensor([1.0, 2.0, 3.0, 6.0]), torch.tensor([2.0, 2.0, 4.0, 8.0])
    d = paired_difference(a, b)  # differences -1, 0, -1, -2: mean -1, sd sqrt(2/3), se sd / 2
    assert d["difference"] == pytest.approx(-1.0) and d["relative"] == pytest.approx(-0.25)
    assert d["standard_error"] == pytest.approx((2 / 3) ** 0.5 / 2)
    assert math.isnan(paired_difference(a[:1], b[:1])["standard_error"])
    for x, y in ((a, b[:3]), (a[:0], b[:0]), (a.reshape(2, 2), b.reshape(2, 2))):
        with pytest.raises(ValueError, match="paired"):
            paired_difference(x, y)


def test_subnet_fitness_with_cached_reference_features_matches_subnet_consistency(tiny_generator):
    """A `PerceptualDistance` (random VGG stages) takes the cached-features path; the values must not move."""
    from anycost.metrics.perceptual import LpipsScaling, PerceptualDistance, VGG16Stages

    torch.manual_seed(0)
    d = PerceptualDistance(LpipsScaling(), VGG16Stages(2), [torch.rand(64), torch.rand(128)], "random-vgg")
    G = tiny_generator
    configs = [G.subnet(ratio=0.5), G.subnet(resolution=16, ratio=0.25), G.subnet(resolution=16)]
    fit = SubnetFitness(G, n=3, seed=4, perceptual=d, batch=2)
    rows = subnet_consistency(G, configs, n=3, seed=4, perceptual=d, batch=2)
    for config, row in zip(configs, rows):
        assert fit(config) == pytest.approx(row.perceptual, rel=1e-5)
    assert sorted(fit._references) == [(0, 16), (0, 32), (1, 16), (1, 32)]  # once per batch and resolution


def test_search_without_uniform_seeds_beats_the_uniform_config_on_the_tiny_generator(tiny_generator):
    """The uniform config is not seeded, so the search has to find something better by itself.

    At the MACs of the uniform x0.5 config, brute force over the 238 affordable configs (fitness cached, ~2 s)
    says that only two beat it, by 0.6 % and 0.9 %: far more than float rounding moves a fitness (~1e-6
    relative), so the outcome does not depend on the machine. Generation 0 holds random configs only, all
    worse than the uniform one for these seeds; the final best must be one of the two, so it came from the
    mutations, crossovers and ranking. (With these settings seeds 0-19 all end there; seeds 0 and 6 draw
    one of the two in generation 0, so they would not test the evolution.)
    """
    G = tiny_generator
    space = GeneratorSpace(G.arch, ratios=SEARCH_RATIOS)
    fit = SubnetFitness(G, n=2, perceptual=None)
    uniform = SubnetConfig.uniform(G.arch, 0.5)
    budget = float(uniform.macs)
    feasible = [c for c in (SubnetConfig(G.arch, G.arch.resolution, widths) for widths in
                            itertools.product(*space.choices)) if c.macs <= budget]
    better = {c for c in feasible if fit(c) < fit(uniform)}
    optimum = min(feasible, key=lambda c: (fit(c), c.macs))
    assert uniform in feasible and uniform not in better and optimum in better
    assert len(better) <= 0.02 * len(feasible) and all(fit(c) < 0.995 * fit(uniform) for c in better)
    settings = dict(population=12, generations=8, parents=4, n_crossover=6, n_mutation=6, p_mutation=0.2)
    for seed in (1, 2):
        result = evolve(space, fit, budget, seed=seed, initial=(), **settings)
        first = [e for e in result.history if e.generation == 0]
        assert all(space.contains(e.candidate) and e.candidate.macs <= budget for e in result.history)
        assert not better & {e.candidate for e in first} and uniform not in {e.candidate for e in first}
        assert result.best.candidate in better, (seed, result.best.candidate.widths, result.best.fitness,
                                                 fit(uniform))
        assert result.best.fitness < fit(uniform) < min(e.fitness for e in first)


def test_parse_macs_budget():
    assert parse_macs_budget("0.5", 1000) == 500
    assert parse_macs_budget(1, 1000) == 1000
    assert parse_macs_budget("90M", 1) == 9e7 and parse_macs_budget("0.1g", 1) == 1e8
    assert parse_macs_budget("2e7", 1000) == 2e7
    for bad in ("abc", "0", "-3M"):
        with pytest.raises(ValueError):
            parse_macs_budget(bad, 1000)


def test_cli_search_writes_reports_and_resumes(tmp_path, tiny_generator, capsys):
    from anycost import save_generator

    ckpt = str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))
    out = tmp_path / "search"
    args = ["search", "-c", ckpt, "--budget-macs", "0.6", "--population", "6", "--generations", "2",
            "--parents", "2", "--crossover", "2", "--mutation", "2", "-n", "2", "--validate", "3",
            "--held-out", "5", "--perceptual", "mse", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "picked  :" in text and "uniform :" in text
    for name in ("best.json", "pareto.json", "pareto.png", "state.json"):
        assert (out / name).is_file(), name
    best = SubnetConfig.from_json((out / "best.json").read_text())
    report = json.loads((out / "pareto.json").read_text())
    assert best.macs <= 0.6 * tiny_generator.full_config.macs == report["budget"]
    # The pick is the finalist (final parents + uniform configs within budget) best on the validation latents.
    val = report["validation"]
    assert val["seed"] == 1 and val["n"] == 3 and "search_best" in val
    finalists = val["finalists"]
    assert [f["validation"] for f in finalists] == sorted(f["validation"] for f in finalists)
    assert finalists[0]["widths"] == list(best.widths) == report["best"]["config"]["widths"]
    assert any(f["widths"] == report["nearest_uniform"]["config"]["widths"] for f in finalists)
    assert all(f["validation"] != f["fitness"] for f in finalists), "validation latents must differ"
    held = report["held_out"]
    assert held["seed"] == 2 and held["n"] == 5 and held["best"] > 0 and held["nearest_uniform"] > 0
    versus = held["versus_uniform"]
    assert versus["difference"] == pytest.approx(held["best"] - held["nearest_uniform"])
    assert versus["relative"] == pytest.approx(versus["difference"] / held["nearest_uniform"])
    assert versus["standard_error"] >= 0 and "paired standard error" in text
    assert held["best"] != finalists[0]["validation"], "held-out latents must differ from the validation ones"
    assert "held-out latents" in text
    assert all(e["macs"] <= report["budget"] for e in report["pareto"])
    assert main(["generate", "-c", ckpt, "--config", str(out / "best.json"), "-o", str(tmp_path / "x.png")]) == 0
    assert main(args + ["--resume"]) == 0  # finished state: nothing re-evaluated, same answer
    assert SubnetConfig.from_json((out / "best.json").read_text()) == best
    assert main(args[:3] + ["--out", str(out / "none")]) == 1  # no budget
    assert "budget" in capsys.readouterr().err
    assert main(args[:3] + ["--budget-macs", "1e-9", "--out", str(out / "none")]) == 1
    assert main(args[:-2] + ["--validate", "-1", "--out", str(out / "none")]) == 1
    assert "validate" in capsys.readouterr().err and not (out / "none" / "state.json").exists()
    assert main(args[:-2] + ["--validate", "0", "--out", str(tmp_path / "unvalidated")]) == 0
    report = json.loads((tmp_path / "unvalidated" / "pareto.json").read_text())
    assert report["validation"] is None and report["held_out"]["n"] == 5
    assert main(args[:-2] + ["--held-out", "0", "--out", str(out / "none")]) == 1
    assert "held_out" in capsys.readouterr().err and not (out / "none" / "state.json").exists()
    assert report["best"]["fitness"] == min(e["fitness"] for e in report["pareto"])  # the search's own best


def test_cli_search_over_finer_ratios(tmp_path, tiny_generator, capsys):
    """--ratios sets the widths each layer may take; the uniform baseline stays the largest uniform config
    of those ratios within budget, and a bad list is refused before anything runs."""
    from anycost import save_generator

    ckpt = str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))
    out = tmp_path / "fine"
    ratios = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
    x625 = SubnetConfig.uniform(tiny_generator.arch, 0.625)
    args = ["search", "-c", ckpt, "--budget-macs", str(x625.macs), "--ratios", ",".join(map(str, ratios)),
            "--population", "6", "--generations", "2", "--parents", "2", "--crossover", "2", "--mutation", "2",
            "-n", "2", "--validate", "2", "--held-out", "2", "--perceptual", "mse", "--out", str(out)]
    assert main(args) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["settings"]["space"]["ratios"] == list(ratios)
    report = json.loads((out / "pareto.json").read_text())
    assert report["nearest_uniform"]["config"]["widths"] == list(x625.widths)
    assert report["nearest_uniform"]["describe"].endswith("ratio 0.625")
    fine = GeneratorSpace(tiny_generator.arch, ratios=ratios)
    best = SubnetConfig.from_json((out / "best.json").read_text())
    assert fine.contains(best) and best.macs <= x625.macs
    for bad in ("0,1", "0.5,abc", ","):
        with pytest.raises(SystemExit):
            main(args[:5] + ["--ratios", bad, "--out", str(tmp_path / "bad")])
        assert "ratio" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_cli_search_under_a_latency_budget(tmp_path, tiny_generator, capsys):
    from anycost import save_generator

    ckpt = str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))
    out = tmp_path / "lat"
    args = ["search", "-c", ckpt, "--budget-ms", "1000", "--budget-macs", "0.6", "--population", "4",
            "--generations", "1", "--parents", "2", "--crossover", "1", "--mutation", "1", "-n", "1",
            "--validate", "2", "--held-out", "2", "--perceptual", "mse", "--out", str(out)]
    assert main(args) == 0
    assert "ms predicted" in capsys.readouterr().out and (out / "latency.json").is_file()
    report = json.loads((out / "pareto.json").read_text())
    assert report["cost"] == "latency_ms" and report["budget_ms"] == 1000
    assert all(e["latency_ms"] <= 1000 and e["macs"] <= report["budget_macs"] for e in report["pareto"])
    assert main(args + ["--resume"]) == 0
    assert "latency table: " in capsys.readouterr().out  # the resumed run reuses the measured table
    # The measured table covers the searched ratios; a table of coarser ones is refused before the search.
    table = LatencyTable.load(out / "latency.json")
    assert not missing_keys(table, SEARCH_RATIOS, 32) and missing_keys(table, (0.3, 1.0), 32)
    coarse = tmp_path / "coarse"
    assert main(args[:-2] + ["--ratios", "0.5,1", "--out", str(coarse)]) == 0
    assert main(args[:-2] + ["--latency-table", str(coarse / "latency.json"), "--out", str(tmp_path / "x")]) == 1
    assert "lacks" in capsys.readouterr().err and not (tmp_path / "x" / "state.json").exists()

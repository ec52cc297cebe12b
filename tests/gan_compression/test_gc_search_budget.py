"""The GAN Compression search under a latency budget (made-up tables: nothing is timed), with the MACs as a
constraint, the pick checked on other validation pairs, and one-line errors for budgets and tables that cannot
work."""

import json

import pytest
import torch
from gc_fixtures import SEARCH, TASK, error_of, needs_fashion, run_cli

import anycost.gan_compression.search as gc_search
from anycost.gan_compression import validation_pairs
from anycost.gan_compression.latency import I2ILatencyTable, table_specs
from anycost.gan_compression.search import load_supernet, run_search
from anycost.gan_compression.space import I2ISpace
from anycost.models.i2i import I2IArch, I2IConfig
from anycost.models.stylegan2 import GeneratorArch
from anycost.search.latency import LatencyTable

pytestmark = needs_fashion


def made_up_table(arch: I2IArch) -> I2ILatencyTable:
    """A complete table of `arch` whose ms grow with each conv's output width, not with its MACs: a fixed cost per
    conv (a launch) plus 0.01 ms per output channel."""
    return I2ILatencyTable(arch, {k: 0.05 + 0.01 * s.c_out for k, s in table_specs(arch).items()}, "made-up", 1)


@pytest.fixture(scope="module")
def table(supernet_dir):
    return made_up_table(load_supernet(supernet_dir)[0].arch)


def no_measuring(G):
    raise AssertionError("the search measured a latency table although one was at hand")


def test_a_latency_budget_searches_the_predicted_ms(supernet_dir, table, tmp_path, monkeypatch):
    monkeypatch.setattr(gc_search, "measure_i2i_latency", no_measuring)
    space = I2ISpace(table.arch, cost=table)
    budget = space.cost(space.uniform_configs()[-2])  # the second largest uniform sub-network's predicted ms
    path, out = table.save(tmp_path / "made-up.json"), tmp_path / "s"
    assert run_cli("search", "--supernet", supernet_dir, "--budget-ms", budget, "--latency-table", path,
                   "--out", out, "--validate", 8, *SEARCH) == 0
    s = json.loads((out / "pareto.json").read_text())
    assert s["cost"] == "latency_ms" and s["budget"] == s["budget_ms"] == budget and s["budget_macs"] is None
    for e in [s["best"], *s["pareto"]]:
        assert e["cost"] == e["latency_ms"] == pytest.approx(table.predict(I2IConfig(table.arch, tuple(e["widths"]))))
        assert e["latency_ms"] <= budget
    assert not (out / "latency.json").exists()  # a given table stays where it is


def test_with_both_budgets_the_macs_are_a_constraint_and_out_table_is_reused(supernet_dir, table, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setattr(gc_search, "measure_i2i_latency", no_measuring)
    out = tmp_path / "s"
    table.save(out / "latency.json")  # as a first run would have measured it
    lines = []
    kwargs = dict(budget_ms=1e3, budget_macs=0.9, n=8, validate=0, population=4, parents=2, n_crossover=2,
                  n_mutation=2, generations=1, progress=False, log=lines.append)
    s = run_search(supernet_dir, out, **kwargs)
    full = I2IConfig.full(table.arch)
    assert s["cost"] == "latency_ms" and s["budget_macs"] == 0.9 * full.macs and s["validation"] is None
    assert all(e["macs"] <= s["budget_macs"] for e in [s["best"], *s["pareto"]])
    assert any(line.startswith("latency table: ") for line in lines)
    assert run_search(supernet_dir, out, resume=True, **{**kwargs, "generations": 2})["generations"] == 2


def test_the_pick_is_the_best_on_the_other_pairs(supernet_dir, tmp_path, monkeypatch):
    """Where the second set disagrees with the first, the pick follows the second: its targets are made the
    outputs of a finalist other than the search's best, which then scores ~0 there."""
    kwargs = dict(budget_macs=0.9, n=8, validate=8, population=4, parents=2, n_crossover=2, n_mutation=2,
                  generations=1, progress=False, log=lambda line: None)
    first = run_search(supernet_dir, tmp_path / "a", **kwargs)["validation"]
    own = first["search_best"]["widths"]
    other = next(f["widths"] for f in first["finalists"] if f["widths"] != own)
    G, _ = load_supernet(supernet_dir)
    config = I2IConfig(G.arch, tuple(other))

    def pairs(task, n=None, offset=0):
        inputs, targets = validation_pairs(task, n, offset)
        with torch.no_grad():
            return inputs, (G(inputs, config=config) if offset else targets)

    monkeypatch.setattr(gc_search, "validation_pairs", pairs)
    s = run_search(supernet_dir, tmp_path / "b", **kwargs)
    assert s["validation"]["search_best"]["widths"] == own != s["best"]["widths"] == other
    assert json.loads((tmp_path / "b" / "best.json").read_text())["widths"] == other
    assert s["validation"]["finalists"][0]["validation"] == pytest.approx(0, abs=1e-5)
    assert s["validation"]["offset"] == 8 and s["validation"]["n"] == 8


def test_offset_validation_pairs_do_not_overlap():
    head, tail = validation_pairs(TASK, 4), validation_pairs(TASK, 4, offset=4)
    both = validation_pairs(TASK, 8)
    for a, b, c in zip(head, tail, both):
        assert torch.equal(torch.cat([a, b]), c)
        assert not any(torch.equal(x, y) for x in a for y in b)
    assert len(validation_pairs(TASK, offset=2040)[0]) == 8
    with pytest.raises(ValueError, match="from 2040 on"):
        validation_pairs(TASK, 9, offset=2040)
    with pytest.raises(ValueError, match="offset must be"):
        validation_pairs(TASK, 1, offset=2048)


def test_budgets_and_tables_that_cannot_work_are_one_line_errors(capsys, supernet_dir, table, tmp_path):
    path, out = table.save(tmp_path / "made-up.json"), tmp_path / "s"
    low = I2ISpace(table.arch, cost=table).cost(I2ISpace(table.arch).cheapest())
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-ms", low * 0.9, "--latency-table", path,
                   "--out", out, *SEARCH)
    assert "below the smallest sub-network's" in err and " ms" in err and not out.exists()
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-ms", 1e3, "--budget-macs", "1K",
                   "--latency-table", path, "--out", out, *SEARCH)
    assert "MACs limit 1000 is below the smallest sub-network's" in err and not out.exists()
    other = made_up_table(I2IArch.resnet(8, n_blocks=3, image_size=32, step=4, separable=True))
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-ms", 1e3, "--latency-table",
                   other.save(tmp_path / "other.json"), "--out", out, *SEARCH)
    assert "the latency table is for" in err and not out.exists()
    stylegan = LatencyTable(GeneratorArch(32, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2),
                            {"conv/4/8/8": 1.0})
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-ms", 1e3, "--latency-table",
                   stylegan.save(tmp_path / "stylegan.json"), "--out", out, *SEARCH)
    assert "another generator family" in err and not out.exists()
    partial = I2ILatencyTable(table.arch, dict(list(table.entries.items())[1:]))
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-ms", 1e3, "--latency-table",
                   partial.save(tmp_path / "partial.json"), "--out", out, *SEARCH)
    assert "lacks 1 conv(s)" in err and not out.exists()
    assert "give a MACs budget" in error_of(capsys, "search", "--supernet", supernet_dir, "--out", out, *SEARCH)
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-macs", 0.5, "--samples", 2000,
                   "--validate", 100, "--out", out, *SEARCH[2:])
    assert "from 2000 on" in err and not out.exists()

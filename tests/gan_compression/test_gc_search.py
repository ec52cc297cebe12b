"""Search, fine-tune and export of a supernet's sub-networks: the fitness without retraining, the commands end
to end on a tiny supernet, exact resume of a fine-tune, and one-line errors for bad budgets and configs."""

import json

import pytest
import torch
from gc_fixtures import SEARCH, TASK, error_of, needs_fashion, run_cli

from anycost.gan_compression import validation_pairs
from anycost.gan_compression.finetune import FinetuneRun, finetune_config
from anycost.gan_compression.fitness import SubnetQuality
from anycost.gan_compression.search import load_supernet
from anycost.models.i2i import I2IConfig, export, load_generator, read_metadata

pytestmark = needs_fashion


def test_fitness_evaluates_sub_networks_with_the_supernet_weights(supernet_dir):
    G, cfg = load_supernet(supernet_dir)
    inputs, targets = validation_pairs(TASK, 6)
    l1 = SubnetQuality(G, inputs, targets, batch=4)
    small = I2IConfig.uniform(G.arch, 0.5)
    expected = (export(G, small)(inputs) - targets).abs().mean().item()
    assert l1(small) == pytest.approx(expected, rel=1e-5) and small in l1.cache
    # FID with a stand-in extractor (the real one is the offline Inception network): 0 against itself
    same = SubnetQuality(G, inputs, l1.outputs(small), metric="fid", extractor=lambda x: x.flatten(1)[:, :4])
    assert same(small) == pytest.approx(0, abs=1e-6) and same(I2IConfig.full(G.arch)) > 0
    with pytest.raises(ValueError, match="metric must be one of"):
        SubnetQuality(G, inputs, targets, metric="psnr")


@pytest.fixture(scope="module")
def searched(supernet_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    assert run_cli("search", "--supernet", supernet_dir, "--budget-macs", 0.9, "--out", out, *SEARCH) == 0
    return out


def test_search_writes_the_best_config_within_budget_and_the_reports(searched, supernet_dir):
    G, _ = load_supernet(supernet_dir)
    best = I2IConfig.from_dict(json.loads((searched / "best.json").read_text()))
    summary = json.loads((searched / "pareto.json").read_text())
    assert best.arch == G.arch and best.macs <= 0.9 * I2IConfig.full(G.arch).macs == summary["budget"]
    assert summary["best"]["widths"] == list(best.widths) and summary["evaluated"] >= 4
    assert summary["pareto"] and summary["metric"] == "l1 to the target"
    assert (searched / "pareto.png").is_file() and (searched / "state.json").is_file()


def test_finetune_resumes_exactly_and_exports_a_plain_network(searched, supernet_dir, tmp_path):
    data = json.loads((searched / "best.json").read_text())
    cfg = finetune_config(supernet_dir, data, steps=4, batch=2, checkpoint_every=2, sample_every=100)
    straight = FinetuneRun(cfg, tmp_path / "a", progress=False)
    G, _ = load_supernet(supernet_dir)
    start = export(G, I2IConfig(G.arch, tuple(data["widths"])))
    assert all(torch.equal(v, straight.G.state_dict()[k]) for k, v in start.state_dict().items())
    straight.train()
    first = FinetuneRun(cfg, tmp_path / "b", progress=False)
    first.train(until=2)
    resumed = FinetuneRun(cfg, tmp_path / "b", progress=False)
    resumed.load_state_dict(torch.load(tmp_path / "b" / "latest.pt", weights_only=True))
    resumed.train()
    for name in straight.modules:
        for k, v in straight.modules[name].state_dict().items():
            assert torch.equal(v, resumed.modules[name].state_dict()[k]), (name, k)
    small = load_generator(resumed.export())
    assert small.arch.widths == tuple(data["widths"])
    assert sum(p.numel() for p in small.parameters()) == I2IConfig(G.arch, small.arch.widths).params


def test_finetune_and_export_commands(searched, supernet_dir, tmp_path):
    out = tmp_path / "ft"
    tiny = ["--steps", 2, "--batch", 2, "--threads", 1, "--no-progress", "--checkpoint-every", 1]
    assert run_cli("finetune", "--supernet", supernet_dir, "--config", searched / "best.json", "--out", out,
                   *tiny) == 0
    assert run_cli("finetune", "--resume", "--out", out, "--steps", 3, "--no-progress") == 0
    assert json.loads((out / "config.json").read_text())["role"] == "finetune"
    assert read_metadata(out / "finetuned.safetensors")["step"] == 3
    path = tmp_path / "sub.safetensors"
    assert run_cli("export", "--supernet", supernet_dir, "--config", searched / "best.json", "--out", path) == 0
    assert list(load_generator(path).arch.widths) == json.loads((searched / "best.json").read_text())["widths"]


def test_bad_budgets_and_configs_are_one_line_errors(capsys, searched, supernet_dir, tmp_path):
    err = error_of(capsys, "search", "--supernet", supernet_dir, "--budget-macs", "1K", "--out", tmp_path / "s",
                   *SEARCH)
    assert "below the smallest sub-network" in err and not (tmp_path / "s").exists()
    assert "neither a fraction" in error_of(capsys, "search", "--supernet", supernet_dir, "--budget-macs", 50,
                                            "--out", tmp_path / "s", *SEARCH)
    assert "grouping must be" in error_of(capsys, "search", "--supernet", supernet_dir, "--budget-macs", 0.5,
                                          "--grouping", "stage", "--out", tmp_path / "s", *SEARCH)
    wide = json.loads((searched / "best.json").read_text())
    wide["widths"][0] = 64
    (tmp_path / "wide.json").write_text(json.dumps(wide))
    for command in ("finetune", "export"):
        err = error_of(capsys, command, "--supernet", supernet_dir, "--config", tmp_path / "wide.json", "--out",
                       tmp_path / command)
        assert "width of layer 'stem' is 64, above the supernet's 4" in err
    err = error_of(capsys, "export", "--supernet", tmp_path, "--config", tmp_path / "wide.json", "--out",
                   tmp_path / "x.safetensors")
    assert "folder of a finished supernet run" in err
    assert "needed unless --resume" in error_of(capsys, "finetune", "--out", tmp_path / "f")

"""`gan_compression.evaluate` and `anycost gan-compression evaluate`: the rows, their ratios, bad input."""

import json

import pytest
import torch
from gc_fixtures import needs_fashion, run_cli

from anycost.gan_compression.evaluate import latencies_ms, latency_by_size, latency_markdown, markdown, score_generators
from anycost.gan_compression.latency import layer_summary, layer_times
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, macs, save_generator


def _generator(ngf: int, separable: bool = False, seed: int = 0) -> I2IGenerator:
    torch.manual_seed(seed)
    return I2IGenerator(I2IArch.resnet(ngf, n_blocks=3, image_size=16, step=4, separable=separable)).eval()


def _features(images: torch.Tensor) -> torch.Tensor:
    """A stand-in for the Inception network: per-channel means and deviations (6 features)."""
    return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)


def test_rows_costs_quality_and_ratios():
    torch.manual_seed(1)
    inputs, targets = torch.rand(24, 3, 16, 16) * 2 - 1, torch.rand(24, 3, 16, 16) * 2 - 1
    big, small = _generator(8), _generator(4, separable=True, seed=1)
    rows = score_generators([("teacher", big), ("student", small), ("again", big)], inputs, targets,
                            extractor=_features, batch=10, rounds=1, warmup=0, calls=1)
    assert [r.label for r in rows] == ["teacher", "student", "again"]
    for row, G in zip(rows, (big, small, big)):
        assert row.macs == I2IConfig.full(G.arch).macs
        assert row.paper_macs == macs.paper_macs(G.arch, G.arch.widths) > row.macs  # deconvs counted 4x
        assert row.params == sum(p.numel() for p in G.parameters())
        assert row.latency_ms > 0
    with torch.no_grad():
        l1 = (big(inputs) - targets).abs().mean().item()
    assert rows[0].l1 == pytest.approx(l1, rel=1e-5)
    assert (rows[0].fid, rows[0].l1) == (rows[2].fid, rows[2].l1)  # the same generator scores the same
    assert rows[1].fid != rows[0].fid
    table = markdown(rows, threads=1, n=24)
    assert f"| {rows[0].macs / rows[1].macs:.1f}x |" in table.splitlines()[5]
    assert "Ratios against teacher" in table


def test_latencies_take_turns_and_bad_values():
    calls = []
    models = [lambda x, i=i: calls.append(i) for i in range(2)]
    assert len(latencies_ms(models, torch.zeros(1), rounds=3, warmup=0, calls=2)) == 2
    assert calls == [0, 0, 1, 1] * 3
    with pytest.raises(ValueError, match="rounds must be"):
        latencies_ms(models, torch.zeros(1), rounds=0)


def test_latency_by_size_and_its_table():
    big, small = _generator(8), _generator(4, separable=True, seed=1)
    times = latency_by_size([big, small], [8, 20], rounds=1, warmup=0, calls=1)
    assert list(times) == [8, 20] and all(len(ms) == 2 and min(ms) > 0 for ms in times.values())
    cut = I2IConfig.full(big.arch).macs / I2IConfig.full(small.arch).macs
    table = latency_markdown(["teacher", "student"], [I2IConfig.full(G.arch).macs for G in (big, small)], times, 1)
    assert f"student {cut:.1f}x" in table
    assert table.splitlines()[5].startswith(f"| 20 | {times[20][0]:.2f} | {times[20][1]:.2f} | "
                                            f"{times[20][0] / times[20][1]:.2f}x |")
    with pytest.raises(ValueError, match="latency size must be a multiple of 4"):
        latency_by_size([big], [10])
    with pytest.raises(ValueError, match="different input channel counts"):
        latency_by_size([big, I2IGenerator(I2IArch.resnet(4, n_blocks=3, image_size=16, step=4, in_channels=1))], [8])


def test_layer_times_cover_every_conv():
    G = _generator(4, separable=True)
    layers = layer_times(G, 24, repeats=1, warmup=0)
    assert [t.name for t in layers] == [s.name for s in macs.conv_specs(G.arch, G.arch.widths, 24)]
    assert sum(t.macs for t in layers) == macs.true_macs(G.arch, G.arch.widths, 24)
    kinds = layer_summary(layers)
    assert kinds["depthwise 3x3"]["count"] == kinds["pointwise"]["count"] == 6  # 3 blocks x 2 separable convs
    assert {"conv 7x7", "conv 3x3", "transposed 3x3"} <= set(kinds)
    assert sum(k["ms"] for k in kinds.values()) == pytest.approx(sum(t.ms for t in layers))


def test_bad_inputs_are_refused_before_any_work():
    G = _generator(4)
    x = torch.zeros(4, 3, 16, 16)
    with pytest.raises(ValueError, match="at least one generator"):
        score_generators([], x, x, extractor=_features)
    with pytest.raises(ValueError, match=r"takes 3-channel 16 px inputs; these pairs are 3-channel 32 px"):
        score_generators([("g", G)], torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 32, 32), extractor=_features)
    with pytest.raises(ValueError, match="must be one"):
        score_generators([("g", G)], x, x[:2], extractor=_features)


@needs_fashion
def test_the_command_writes_the_report(tmp_path):
    paths = []
    for i, ngf in enumerate((8, 4)):
        G = I2IGenerator(I2IArch.resnet(ngf, n_blocks=3, image_size=32, step=4, separable=i == 1))
        paths.append(save_generator(G, tmp_path / f"g{i}.safetensors", metadata={"task": "fmnist-edges2shoes"}))
    out = tmp_path / "eval"
    assert run_cli("evaluate", f"teacher={paths[0]}", paths[1], "-n", 8, "--rounds", 1, "--calls", 1,
                   "--threads", 1, "--no-progress", "--out", out) == 0
    report = json.loads((out / "eval.json").read_text())
    assert [g["label"] for g in report["generators"]] == ["teacher", "g1"]
    assert report["n"] == 8 and (out / "samples.png").is_file() and "| teacher |" in (out / "eval.md").read_text()
    assert "latency_by_size" not in report and "layers" not in report
    assert run_cli("evaluate", f"teacher={paths[0]}", paths[1], "-n", 8, "--rounds", 1, "--calls", 1, "--threads", 1,
                   "--no-progress", "--latency-sizes", "32,64", "--layers", "--out", out) == 0
    report = json.loads((out / "eval.json").read_text())
    assert list(report["latency_by_size"]) == ["32", "64"] and report["layers"]["size"] == 64
    assert set(report["layers"]["generators"]) == {"teacher", "g1"} and report["layers"]["peak_gflops"] > 0
    text = (out / "eval.md").read_text()
    assert "Latency by input size" in text and "g1 at 64 px" in text and "| depthwise 3x3 | 6 |" in text

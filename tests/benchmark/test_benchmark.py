"""`anycost.benchmark` pure logic (no timing asserts) and a tiny `anycost bench` smoke run."""

import json

import pytest
import torch

from anycost import benchmark as B
from anycost import save_generator
from anycost.cli import main
from anycost.cli_args import parse_list
from anycost.models.stylegan2 import SubnetConfig


def test_gflops_is_two_flops_per_mac():
    assert B.gflops(1e9, 1.0) == pytest.approx(2.0)
    assert B.gflops(4.693e9, 0.060) == pytest.approx(156.4, abs=0.1)
    for macs, seconds in [(1e9, 0.0), (1e9, -1.0), (-1, 1.0)]:
        with pytest.raises(ValueError):
            B.gflops(macs, seconds)


def test_time_call_counts_warmup_and_repeats():
    calls = []
    t = B.time_call(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6 and len(t.times_s) == 4
    assert t.min_s <= t.median_s and t.median_ms == pytest.approx(1000 * t.median_s)


def test_time_call_budget_keeps_a_minimum_of_repeats():
    t = B.time_call(lambda: None, repeats=50, warmup=0, budget_s=0.0, min_repeats=3)
    assert len(t.times_s) == 3
    assert len(B.time_call(lambda: None, repeats=2, warmup=0, budget_s=0.0).times_s) == 2


def test_time_call_cpu_clock_ignores_sleeping():
    import time

    assert B.time_call(lambda: time.sleep(0.02), repeats=1, warmup=0, clock="cpu").median_s < 0.015


@pytest.mark.parametrize("kwargs", [dict(repeats=0), dict(warmup=-1), dict(clock="gpu")])
def test_time_call_bad_args(kwargs):
    with pytest.raises(ValueError):
        B.time_call(lambda: None, **kwargs)


def test_timing_needs_times_and_threads_must_be_positive():
    with pytest.raises(ValueError):
        B.Timing(())
    with pytest.raises(ValueError), B.num_threads(0):
        pass
    before = torch.get_num_threads()
    with B.num_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_parse_list():
    assert parse_list("1024, 256", int) == [1024, 256]
    assert parse_list("1.0,0.25", float) == [1.0, 0.25]
    for text in ("", "a,b", "1.5"):
        with pytest.raises(ValueError):
            parse_list(text, int)


def _result():
    rows = [B.Row(256, 0.25, 4_693_000_000, 9_200_000_000, {"ref": 120.0, "kernel": 50.0}, {"ref": 5, "kernel": 5}),
            B.Row(128, 1.0, 10_000_000_000, 0, {"kernel": 100.0})]
    return B.BenchResult(rows, B.Peak(200.0, 96.6, B.peak_macs(), "conv2d"), {"threads": 2, "torch": "x"})


def test_markdown_table_columns_and_percent_of_peak():
    """Without the official formulation the speed-ups are over our reference (the kernel's, as before)."""
    times, throughput = B.markdown_table(_result()).split("\n\n")
    times, throughput = times.splitlines(), throughput.splitlines()
    assert times[0] == "| config (res/ratio) | true GMACs | ref ms | kernel ms | kernel vs ref |"
    assert times[2] == "| 256/0.25 | 4.69 | 120.0 | 50.0 | 2.40x |"
    assert times[3] == "| 128/1 | 10.00 | - | 100.0 | - |"
    assert throughput[0] == "| config (res/ratio) | ref GFLOP/s (% of peak) | kernel GFLOP/s (% of peak) |"
    assert throughput[2:] == ["| 256/0.25 | 78.2 (39%) | 187.7 (94%) |", "| 128/1 | - | 200.0 (100%) |"]
    assert "measured peak: **200.0 GFLOP/s**" in B.report_markdown(_result())


def test_json_round_trip_and_bad_files(tmp_path):
    result = _result()
    back = B.BenchResult.from_dict(json.loads(result.to_json()))
    assert back == result
    path = tmp_path / "bench.json"
    path.write_text(result.to_json())
    assert B.load_result(path) == result
    for bad in ({"kind": "other"}, {**result.to_dict(), "version": 99}, [1]):
        with pytest.raises(ValueError):
            B.BenchResult.from_dict(bad)
    with pytest.raises(ValueError):
        B.from_pytest_benchmark({"nothing": 1})


def test_rows_from_pytest_benchmark_json():
    def entry(median, **info):
        return {"stats": {"median": median, "rounds": 3}, "extra_info": info}

    data = {"benchmarks": [
        entry(0.1, kind="peak", macs=10_000_000_000, shape="conv"),
        entry(0.05, kind="generator", resolution=256, ratio=0.25, impl="kernel", macs=5_000_000_000),
        entry(0.10, kind="generator", resolution=256, ratio=0.25, impl="ref", macs=5_000_000_000),
        entry(0.20, kind="generator", resolution=512, ratio=1.0, impl="kernel", macs=20_000_000_000),
        entry(0.01, kind="op", impl="kernel", macs=1),
    ], "machine_info": {"cpu": {"brand_raw": "cpu"}}}
    result = B.from_pytest_benchmark(data)
    assert result.peak.gflops == pytest.approx(200.0)
    assert [r.label for r in result.rows] == ["512/1", "256/0.25"]
    assert result.rows[1].ms == pytest.approx({"kernel": 50.0, "ref": 100.0})
    assert result.rows[1].speedup() == pytest.approx(2.0)


def test_layer_macs_add_up_to_the_config_macs(tiny_generator):
    G = B.random_generator(arch=tiny_generator.arch)
    config = SubnetConfig.uniform(G.arch, 0.25)
    rows = B.layer_times(G, B.latent(G), config, "ref", repeats=1, warmup=0)
    mapping = G.arch.n_mlp * G.arch.style_dim ** 2
    assert sum(r["macs"] for r in rows) == config.macs - mapping
    assert "| conv1 | StyledConv |" in B.layer_table(rows, peak=100.0)


def test_random_generator_is_initialised_like_the_constructor(tiny_arch):
    G = B.random_generator(arch=tiny_arch, seed=1)
    assert all(torch.isfinite(p).all() for p in G.parameters())
    assert (G.conv1.conv.modulation.bias == 1).all() and (G.conv1.activate.bias == 0).all()
    assert (G.w_avg == 0).all() and G.noises.noise_0.std() > 0.1
    with torch.inference_mode():
        out = G(B.latent(G), noise="const", impl="ref")
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = B.plot(_result(), tmp_path / "bench.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_cli_bench_smoke(tmp_path, tiny_generator, capsys):
    checkpoint = str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))
    out = tmp_path / "bench"
    argv = ["bench", "-c", checkpoint, "--resolutions", "16", "--ratios", "1.0", "--repeats", "1", "--no-peak",
            "--threads", "1", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 16/1 |" in printed and "auto vs official" in printed
    result = B.load_result(out / "bench.json")
    assert [r.label for r in result.rows] == ["16/1"] and set(result.rows[0].ms) == {"official", "ref", "auto"}
    assert (out / "bench.md").read_text().startswith("# anycost bench")


def test_cli_bench_batch_counts_the_macs_of_every_image(tmp_path, tiny_generator):
    checkpoint = str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))
    runs = {}
    for batch in (1, 3):
        out = tmp_path / f"b{batch}"
        assert main(["bench", "-c", checkpoint, "--resolutions", "16", "--ratios", "0.5", "--repeats", "1",
                     "--no-peak", "--impls", "ref", "--threads", "1", "--batch", str(batch), "--out", str(out)]) == 0
        runs[batch] = B.load_result(out / "bench.json")
    assert runs[3].rows[0].macs == 3 * runs[1].rows[0].macs
    assert runs[3].machine["batch"] == 3
    assert (tmp_path / "b3" / "bench.md").read_text().splitlines()[2].startswith("batch 3, fp32")


@pytest.mark.parametrize("bad", [["--ratios", "2"], ["--resolutions", "48"], ["--impls", "fast"],
                                 ["--repeats", "0"], ["--batch", "0"]])
def test_cli_bench_bad_args(tmp_path, bad, capsys):
    argv = ["bench", "--model-resolution", "32", "--channel-multiplier", "0.125", "--no-peak", "--impls", "ref",
            "--resolutions", "16", "--ratios", "1.0", "--repeats", "1", "--out", str(tmp_path), *bad]
    assert main(argv) == 1
    assert "anycost bench: error:" in capsys.readouterr().err


def test_cli_bench_bf16_interleaved_with_its_peak(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", "--model-resolution", "32", "--channel-multiplier", "0.125", "--impls", "kernel",
            "--precision", "fp32,bf16", "--resolutions", "16", "--ratios", "1.0", "--repeats", "1", "--threads", "1",
            "--out", str(out)]
    assert main(argv) == 0
    assert "kernel-bf16 vs kernel" in capsys.readouterr().out
    result = B.load_result(out / "bench.json")
    assert set(result.rows[0].ms) == {"kernel", "kernel-bf16"}
    assert result.peak_bf16 is not None and result.peak_bf16.shape.startswith("bfloat16")
    assert "measured bf16 peak" in (out / "bench.md").read_text()


def test_cli_bench_bad_precision(tmp_path, capsys):
    argv = ["bench", "--model-resolution", "32", "--channel-multiplier", "0.125", "--no-peak", "--impls", "ref",
            "--precision", "fp16", "--resolutions", "16", "--ratios", "1.0", "--repeats", "1", "--out", str(tmp_path)]
    assert main(argv) == 1
    assert "precision must be one of" in capsys.readouterr().err

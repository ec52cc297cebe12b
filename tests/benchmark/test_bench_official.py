"""`anycost bench`'s official candidate: the official formulation on the same weights at the same config, timed
beside ours, with the speed-ups over it and the backends of our entries in the report."""

import json

import pytest
import torch

from anycost import benchmark as B
from anycost.cli import main
from anycost.models.stylegan2 import GeneratorArch

#: The tiny random model of the command-line runs: 32 px, 512 channels at 4 px down to 64 at 32 px.
TINY_BENCH = ["--model-resolution", "32", "--channel-multiplier", "0.125"]


@pytest.mark.parametrize("resolution, ratio", [(32, 0.5), (32, 0.25), (16, 0.25)])
def test_official_candidate_renders_our_output(tiny_generator, resolution, ratio):
    """Same weights, same sliced widths, same const noise and W: the official formulation gives our generator's
    image within fp32 rounding, and a narrower config gives another image (the widths are really used)."""
    G = tiny_generator
    w = B.latent(G, batch=2)
    config = G.subnet(resolution=resolution, ratio=ratio)
    with torch.inference_mode():
        theirs = B.forward_call(G, w, config, "official")()
        ours = G(w, config=config, noise="const", impl="ref")
        full = B.forward_call(G, w, G.subnet(resolution=resolution), "official")()
    scale = ours.abs().max()
    assert theirs.shape == (2, 3, resolution, resolution) and scale > 1
    assert (theirs - ours).abs().max() <= 1e-5 * scale
    assert (full - ours).abs().max() > 1e-2 * scale


def test_official_runs_in_fp32_only(tiny_generator):
    G = tiny_generator
    with pytest.raises(ValueError, match="fp32 only"):
        B.forward_call(G, B.latent(G), G.full_config, "official", "bf16")
    assert B.generator_bench.entries(["official", "auto"], ["fp32", "bf16"]) == [
        ("official", "fp32"), ("auto", "fp32"), ("auto", "bf16")]


def test_tiny_bench_times_official_and_gives_the_speed_ups(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["bench", *TINY_BENCH, "--resolutions", "32,16", "--ratios", "1,0.5", "--repeats", "1", "--threads", "1",
            "--no-peak", "--out", str(out)]
    assert main(argv) == 0
    capsys.readouterr()
    result = B.load_result(out / "bench.json")
    assert [r.label for r in result.rows] == ["32/1", "32/0.5", "16/1", "16/0.5"]
    for row in result.rows:
        assert set(row.ms) == {"official", "ref", "auto"}  # the default impls
        assert set(row.backends) == {"ref", "auto"}  # ours only
        n_convs = 7 if row.resolution == 32 else 5
        assert all(len(b) == n_convs for b in row.backends.values())
        assert row.speedup("official", "auto") == pytest.approx(row.ms["official"] / row.ms["auto"])
    assert result.machine["cpu_capability"] and "tuning_table" in result.machine
    pairs = result.machine["core_pair_ns"]  # one placement probe before the pass and one after
    assert len(pairs) == 2 and all(ns is None or ns > 0 for ns in pairs)
    md = (out / "bench.md").read_text()
    assert ("cache-line round trip" in md) == any(ns is not None for ns in pairs)
    times = next(line for line in md.splitlines() if line.startswith("| config") and "true GMACs" in line)
    assert times.endswith("| official ms | ref ms | auto ms | ref vs official | auto vs official |")
    row = next(line for line in md.splitlines() if line.startswith("| 32/0.5 | "))
    assert row.count("x |") == 2  # both speed-ups filled in
    assert "| backends |" in md and "ref: rrrrrrr" in md and "instruction-set levels" in md


def test_bad_impls_is_a_one_line_error_before_the_model_is_built(tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was built before the impls were checked")

    monkeypatch.setattr(B, "random_generator", no_model)
    assert main(["bench", "--impls", "official,fast", "--no-peak", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "anycost bench: error: impl must be one of official, ref, kernel, auto, got 'fast'"


def _result_with_official():
    backends = {"auto": {"conv1": "kernel", "convs.0": "ref"}, "auto-bf16": {"conv1": "bf16", "convs.0": "ref"}}
    row = B.Row(256, 0.25, 4_693_000_000, 0, {"official": 100.0, "auto": 40.0, "auto-bf16": 25.0}, backends=backends)
    return B.BenchResult([row], B.Peak(200.0, 1.0, 1, "conv"), {"cpu_capability": "avx512", "cpu_levels": ["avx2"]},
                         B.Peak(500.0, 1.0, 1, "bf16 conv"))


def test_report_speed_ups_over_official_and_percent_of_each_peak():
    times, throughput, note = B.markdown_table(_result_with_official()).split("\n\n")
    assert times.splitlines()[0].endswith("| official ms | auto ms | auto-bf16 ms | auto vs official "
                                          "| auto-bf16 vs official | auto-bf16 vs auto |")
    assert times.splitlines()[2] == "| 256/0.25 | 4.69 | 100.0 | 40.0 | 25.0 | 2.50x | 4.00x | 1.60x |"
    # GFLOP/s = 2 x 4.693 G / time; fp32 entries against the fp32 peak (200), bf16 against the bf16 one (500).
    assert throughput.splitlines()[2] == ("| 256/0.25 | 93.9 (47%) | 234.7 (117%) | 375.4 (75%) "
                                          "| auto: kr; auto-bf16: br |")
    assert note.startswith("backends: one letter per styled conv")
    assert "native kernels at **avx512**" in B.report_markdown(_result_with_official())


def test_json_keeps_the_backends_and_reads_version_1(tmp_path):
    result = _result_with_official()
    assert B.BenchResult.from_dict(json.loads(result.to_json())) == result
    old = {"kind": "anycost-bench", "version": 1, "machine": {}, "peak": None,
           "rows": [{"resolution": 128, "ratio": 1.0, "macs": 1, "ms": {"kernel": 2.0}}]}
    assert B.BenchResult.from_dict(old).rows[0].backends == {}


def test_the_sweep_copies_the_weights_under_official_keys_once(monkeypatch):
    """The sweep copies the weights under the official keys once for all configs, not per timing."""
    from anycost.benchmark import generator_bench

    copies = []
    official_state = generator_bench.official_state
    monkeypatch.setattr(generator_bench, "official_state", lambda G: copies.append(1) or official_state(G))
    G = B.random_generator(arch=GeneratorArch(32, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2))
    result = B.run_generator_bench(G, [32, 16], [1.0, 0.5], ["official"], repeats=1, warmup=0, peak=False)
    assert len(copies) == 1 and all("official" in r.ms and not r.backends for r in result.rows)

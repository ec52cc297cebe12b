"""`anycost compress` on the tiny generator and the bundled model, run in-process."""

import json
import math

import pytest
import torch

import anycost
from anycost import save_generator
from anycost.cli import main
from anycost.compression import int8, load_generator, quantize_int8
from anycost.compression.generator import compressible_keys

FAST = ["-n", "2", "--perceptual", "none", "--rounds", "1", "--threads", "1", "--no-progress"]


@pytest.fixture
def checkpoint(tmp_path, tiny_generator):
    return str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))


def test_compress_writes_every_model_and_the_report(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["compress", "-c", checkpoint, "--method", "prune,channels,kmeans", "--sparsity", "0.5",
                 "--scope", "global,layer", "--prune-weights", "convs,all", "--keep", "0.5", "--bits", "2",
                 "--cheap", "16:0.25", "-n", "2", "--perceptual", "none", "--rounds", "1", "--no-progress",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    settings = [(r["method"], r["setting"]) for r in report["rows"]]
    assert settings == [("none", "uncompressed"), ("prune", "50% global"), ("prune", "50% layer"),
                        ("prune", "50% global, all weights"), ("prune", "50% layer, all weights"),
                        ("channels", "keep 0.5"), ("kmeans", "2 bits")]
    for name in ("prune-global-0.5", "prune-layer-0.5", "prune-global-0.5-all", "channels-0.5", "kmeans-2bit"):
        assert load_generator(out / f"{name}.safetensors").steps
    assert report["rows"][3]["file_ratio"] < report["rows"][1]["file_ratio"]
    channels = report["rows"][5]
    assert channels["macs_ratio"] < 1 and channels["distance"]["16 px, ratio 0.25"]["mse"] < 1e-9
    assert "| kmeans | 2 bits |" in (out / "report.md").read_text()
    assert "wrote" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    from PIL import Image

    with Image.open(out / "report.png") as png:  # the quality / size / speed plot
        assert png.format == "PNG" and png.size[0] > 600


def test_plot_leaves_out_exact_copies_and_works_without_rows(tiny_generator, tmp_path):
    pytest.importorskip("matplotlib")
    from anycost.compression.report import Row, plot

    config = tiny_generator.full_config
    exact = Row("channels", "keep 1", 10, 1.0, 1.0, 1.0, 0.1, {config.describe(): {"psnr": math.inf}})
    assert plot([exact], [config], tmp_path / "r.png").is_file()


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_int8_on_the_bundled_model_says_how_much_runs_int8(int8_everywhere, tmp_path, capsys, one_thread):
    out = tmp_path / "out"
    assert main(["compress", "--method", "int8", *FAST, "--out", str(out)]) == 0
    row = json.loads((out / "report.json").read_text())["rows"][1]
    assert (row["method"], row["setting"]) == ("int8", "calibrated on 16 latents")
    assert row["int8_layers"] == {"64 px, full": [9, 9], "32 px, ratio 0.25": [7, 7]}  # every 3x3 conv runs int8
    assert 30 < row["distance"]["64 px, full"]["psnr"] < 100  # the bound; int8, not an exact copy
    printed = capsys.readouterr().out
    assert "3x3 convs run in int8: 9 of 9 at 64 px, full; 7 of 7 at 32 px, ratio 0.25" in printed
    assert row["file_ratio"] < 0.6  # 1 byte per conv weight instead of 4

    # the file is the model the CLI documents: 16 calibration latents drawn with seed --seed + 1
    loaded = anycost.load_generator(out / "int8.safetensors")
    G, _ = anycost.default_generator()
    expected = quantize_int8(G, int8.calibration_latents(G, 16, seed=1))
    assert loaded.encodings == expected.encodings
    w = G.mapping(torch.randn(2, G.arch.style_dim, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        torch.testing.assert_close(loaded(w, noise="const"), expected(w, noise="const"), rtol=1e-5, atol=1e-5)


def test_int8_with_calibrated_activation_scales(checkpoint, tmp_path, one_thread):
    out = tmp_path / "out"
    assert main(["compress", "-c", checkpoint, "--method", "int8", "--activations", "calibrated", "--cheap",
                 "16:0.25", *FAST, "--out", str(out)]) == 0
    row = json.loads((out / "report.json").read_text())["rows"][1]
    assert row["setting"] == "calibrated on 16 latents, per-layer activation scales"
    loaded = anycost.load_generator(out / "int8-calibrated.safetensors")
    assert loaded.steps[-1]["activations"] == "calibrated"
    assert all(isinstance(spec["act_scale"], float) for spec in loaded.encodings.values())


def test_kmeans_int8_rows(int8_everywhere, checkpoint, tmp_path, one_thread):
    out = tmp_path / "out"
    assert main(["compress", "-c", checkpoint, "--method", "kmeans-int8", "--bits", "4,8", "--cheap", "16:0.25",
                 *FAST, "--out", str(out)]) == 0
    rows = json.loads((out / "report.json").read_text())["rows"][1:]
    assert [r["setting"] for r in rows] == [f"{b} bits, run int8 (calibrated on 16 latents)" for b in (4, 8)]
    assert all(r["int8_layers"]["32 px, full"] == [7, 7] for r in rows)
    assert rows[0]["file_bytes"] < rows[1]["file_bytes"]
    loaded = anycost.load_generator(out / "kmeans-4bit-int8.safetensors")
    assert [s["method"] for s in loaded.steps] == ["kmeans", "int8"]


def test_finetune_adds_a_row_and_keeps_the_mask(checkpoint, tmp_path, one_thread):
    out = tmp_path / "out"
    assert main(["compress", "-c", checkpoint, "--method", "prune,channels", "--keep", "0.5", "--finetune", "3",
                 "--cheap", "16:0.25", *FAST, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["finetune"] == {"steps": 3, "lr": 1e-3}
    rows = {r["setting"]: r for r in report["rows"]}
    assert list(rows) == ["uncompressed", "50% global", "50% global, fine-tuned 3 steps", "keep 0.5",
                          "keep 0.5, fine-tuned 3 steps"]
    before, after = rows["50% global"], rows["50% global, fine-tuned 3 steps"]
    assert after["distance"]["32 px, full"]["mse"] != before["distance"]["32 px, full"]["mse"]
    assert after["setup_s"] > before["setup_s"]  # the fine-tune's time is added to the compression's
    pruned, tuned = (load_generator(out / f"{name}.safetensors") for name in ("prune-global-0.5",
                                                                              "prune-global-0.5-ft3"))
    for key in compressible_keys(pruned):
        assert torch.equal(pruned.state_dict()[key] == 0, tuned.state_dict()[key] == 0), key
    assert abs(after["file_bytes"] - before["file_bytes"]) < 256  # same mask and values; a longer steps record
    assert tuned.steps[-1]["method"] == "finetune"
    assert load_generator(out / "channels-0.5-ft3.safetensors").arch == load_generator(
        out / "channels-0.5.safetensors").arch


class StubFeatures:
    """Stands in for the Inception network (too slow for a test): per-channel means and stds."""

    identifier = "stub"

    def __init__(self, **kwargs):
        pass

    def __call__(self, images):
        return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)


def test_fid_to_the_original(checkpoint, tmp_path, monkeypatch, one_thread):
    monkeypatch.setattr("anycost.metrics.inception.InceptionFeatures", StubFeatures)
    out = tmp_path / "out"
    assert main(["compress", "-c", checkpoint, "--method", "prune,kmeans", "--bits", "8", "--fid", "6",
                 "--cheap", "16:0.25", *FAST, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["fid_n"] == 6
    none, pruned, kmeans8 = report["rows"]
    assert none["fid"] == {"32 px, full": 0.0, "16 px, ratio 0.25": 0.0}
    for label in none["fid"]:
        # 8-bit k-means barely changes the samples, 50% pruning does: the samples are the same latents and noise
        assert 0 <= kmeans8["fid"][label] < pruned["fid"][label]
    assert "32 px, full: FID to original" in (out / "report.md").read_text()


def test_fid_to_the_original_is_zero_on_the_same_latents(tiny_generator):
    from anycost.compression.report import fid_to_original, original_features

    configs = [tiny_generator.full_config, tiny_generator.subnet(16, 0.5)]
    reference = original_features(tiny_generator, configs, 4, 3, StubFeatures())
    same = fid_to_original(tiny_generator, configs, reference, 3, StubFeatures())
    other = fid_to_original(tiny_generator, configs, reference, 4, StubFeatures())
    assert all(abs(v) < 1e-6 for v in same.values()) and all(v > 1e-3 for v in other.values())


@pytest.mark.parametrize("args, message", [
    (["--method", "svd"], "unknown method 'svd'"),
    (["--method", "kmeans", "--bits", "9"], "bits must be an integer in 1..8, got 9"),
    (["--method", "prune", "--sparsity", "1"], "sparsity must be in [0, 1), got 1.0"),
    (["--method", "prune", "--prune-weights", "biases"], "weights must be one of ('convs', 'all'), got 'biases'"),
    (["--method", "channels", "--keep", "0"], "keep must be in (0, 1], got 0.0"),
    (["--finetune", "-1"], "fine-tune steps must be an integer >= 0, got -1"),
    (["--finetune", "2", "--lr", "0"], "learning rate must be a positive number, got 0.0"),
    (["--method", "int8", "--calibration", "0"], "calibration latents must be an integer >= 1, got 0"),
    (["--calibration", "0"], "calibration latents must be an integer >= 1, got 0"),
    (["--fid", "1"], "--fid needs at least 2 samples (a covariance), got 1"),
    (["--method", "prune,int8", "--finetune", "5"], "--finetune does not apply to int8"),
    (["--method", "kmeans-int8", "--finetune", "5"], "--finetune does not apply to int8 or kmeans-int8"),
    (["--method", "kmeans-int8", "--bits", "0"], "bits must be an integer in 1..8, got 0"),
])
def test_bad_settings_are_one_line_errors_before_any_work(checkpoint, tmp_path, capsys, args, message):
    assert main(["compress", "-c", checkpoint, "--out", str(tmp_path / "o"), *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"anycost compress: error: {message}" or (message in err and "\n" not in err)
    assert not (tmp_path / "o").exists()  # nothing written

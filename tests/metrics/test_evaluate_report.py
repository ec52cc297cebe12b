"""The model-card evaluation table: configs, rows, markdown/JSON, and the `anycost evaluate` command."""

import json
import math

import torch
from PIL import Image

from anycost.cli import main
from anycost.metrics import evaluate
from anycost.metrics.cli import model_labels
from anycost.models.stylegan2.checkpoints import save_generator


def test_evaluation_configs(tiny_arch):
    configs = evaluate.evaluation_configs(tiny_arch)
    assert [c.resolution for c in configs] == [32, 16, 8, 32, 32, 32]
    assert configs[0].widths == tiny_arch.full_widths and configs[3].widths != tiny_arch.full_widths


def test_rows_and_report(tiny_generator, tmp_path, mean_colour):
    reals = torch.rand(12, 3, 32, 32) * 2 - 1
    configs = evaluate.evaluation_configs(tiny_generator.arch, ratios=(0.5, 1.0), resolutions=(32, 16))
    rows = evaluate.evaluate_model(tiny_generator, reals, "noise", configs, n=6, n_real=12, cache_dir=tmp_path,
                                   perceptual=None, consistency_n=4, label="tiny", extractor=mean_colour)
    assert [r["config"] for r in rows] == [c.describe() for c in configs]
    assert all(r["fid"] > 0 and not math.isnan(r["kid_mean"]) for r in rows)
    assert rows[0]["mse"] == 0 and rows[2]["mse"] > 0  # the full model is its own reference
    paths = evaluate.write_report(rows, tmp_path / "out", {"perceptual": "none"})
    assert json.loads(paths["json"].read_text())["rows"][0]["model"] == "tiny"
    assert paths["md"].read_text().count("| tiny |") == 3


def test_evaluate_command(tiny_generator, tmp_path, capsys):
    folder = tmp_path / "reals"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (50 * i, 90, 200 - 40 * i)).save(folder / f"{i}.png")
    save_generator(tiny_generator, tmp_path / "g.safetensors")
    out = tmp_path / "eval"
    assert main(["evaluate", str(tmp_path / "g.safetensors"), "--data", str(folder), "--configs", "full",
                 "--n", "3", "--n-real", "4", "--perceptual", "none", "--cache", str(tmp_path / "cache"),
                 "--out", str(out)]) == 0
    rows = json.loads((out / "eval.json").read_text())["rows"]
    assert len(rows) == 1 and rows[0]["fid"] >= 0 and rows[0]["n_real"] == 4
    assert "| g |" in capsys.readouterr().out
    assert main(["evaluate", str(tmp_path / "g.safetensors"), "--data", str(folder), "--no-fid", "--perceptual",
                 "none", "--consistency-n", "2", "--out", str(out)]) == 0
    rows = json.loads((out / "eval.json").read_text())["rows"]
    assert len(rows) == 6 and math.isnan(rows[0]["fid"]) and rows[-1]["mse"] > 0


def test_model_labels_tell_files_with_the_same_stem_apart():
    assert model_labels(["runs/a/generator.safetensors", "runs/b/generator.safetensors", "x/stage-plain.pt"]) == [
        "a/generator", "b/generator", "stage-plain"]

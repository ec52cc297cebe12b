"""`anycost train-encoder` and `anycost project` end to end on a tiny saved generator."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from anycost import save_generator
from anycost.cli import main
from anycost.images import save_image


@pytest.fixture
def setup(tmp_path, tiny_generator):
    G = tiny_generator
    ckpt = save_generator(G, tmp_path / "g.safetensors")
    folder = tmp_path / "images"
    w = G.mapping(torch.randn(6, G.arch.style_dim, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        for i, image in enumerate(G(w, noise="const")):
            save_image(image, folder / f"{i}.png")
    return str(ckpt), folder


def test_train_encoder_then_project(tmp_path, setup, capsys):
    ckpt, folder = setup
    enc_dir = tmp_path / "enc"
    argv = ["train-encoder", "--out", str(enc_dir), "-c", ckpt, "--data", str(folder), "--steps", "2",
            "--batch", "2", "--perceptual", "none", "--no-progress"]
    assert main(argv) == 0
    assert (enc_dir / "encoder.safetensors").is_file()
    assert main(argv) == 1 and "--resume" in capsys.readouterr().err

    out = tmp_path / "proj"
    assert main(["project", str(folder / "0.png"), "--out", str(out), "-c", ckpt, "--encoder",
                 str(enc_dir / "encoder.safetensors"), "--steps", "3", "--optimizer", "lbfgs",
                 "--perceptual", "none", "--consistency-weight", "0.5", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "full_mse" in printed and "sub_mse:32 px, ratio 0.25" in printed
    assert np.load(out / "latent.npy").shape == (1, 8, 32)
    report = json.loads((out / "report.json").read_text())
    assert report["steps_run"] == 3 and report["encoder"].startswith("encoder ") and len(report["losses"]) == 3
    assert set(report["distances"]) == set(report["initial_distances"])
    assert Image.open(out / "reconstruction.png").size[0] > 4 * 128


def test_project_refuses_a_bad_image(tmp_path, setup, capsys):
    ckpt, _ = setup
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    assert main(["project", str(bad), "--out", str(tmp_path / "o"), "-c", ckpt, "--perceptual", "none",
                 "--no-progress"]) == 1
    assert "not an image" in capsys.readouterr().err

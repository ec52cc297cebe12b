"""`anycost train` from the command line: a tiny run, resume, and refusing to clobber a run."""

import pytest
from PIL import Image

from anycost.cli import main
from anycost.models.stylegan2.checkpoints import load_generator
from anycost.training.checkpoint import load_training_state
from anycost.training.cli import parse_schedule
from anycost.training.config import TrainConfig

TINY = ["--resolution", "16", "--channel-multiplier", "0.03125", "--channel-max", "32", "--style-dim", "16",
        "--n-mlp", "2", "--batch", "2", "--threads", "1", "--no-progress"]


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    for i in range(4):
        Image.new("RGB", (20, 24), (60 * i, 255 - 60 * i, 128)).save(root / f"{i}.png")
    return root


def test_train_then_resume_with_a_longer_schedule(folder, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", str(folder), "--out", str(out), *TINY]
    assert main([*args, "--schedule", "plain:2"]) == 0
    assert load_generator(out / "generator.safetensors").arch.resolution == 16
    assert (out / "config.json").is_file()
    assert main(args) == 1  # a second run into the same folder would overwrite it
    assert "--resume" in capsys.readouterr().err
    assert TrainConfig.from_json((out / "config.json").read_text()).r1_gamma == TrainConfig().r1_gamma
    assert TrainConfig.from_json((out / "config.json").read_text()).resolution_consistency
    assert main([*args, "--resume", "--schedule", "plain:2,multires:1", "--augment", "cutout",
                 "--r1-gamma", "0.5", "--no-resolution-consistency", "--full-resolution-prob", "0.5",
                 "--flexible-prob", "1"]) == 0
    assert "resumed" in capsys.readouterr().out
    assert load_training_state(out / "latest.pt")["step"] == 3
    saved = TrainConfig.from_json((out / "config.json").read_text())  # the overrides are on record
    assert saved.schedule == (("plain", 2), ("multires", 1)) and saved.augment == ("cutout",)
    assert saved.r1_gamma == 0.5 and not saved.resolution_consistency and saved.full_resolution_prob == 0.5
    assert saved.flexible_prob == 1.0


def test_bad_data_and_schedule(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "r"), *TINY]) == 1
    assert "no images" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r"), *TINY]) == 1
    assert "neither" in capsys.readouterr().err
    assert not (tmp_path / "r" / "latest.pt").exists()
    assert parse_schedule("plain:3,adaptive:2") == (("plain", 3), ("adaptive", 2))
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "r"), "--schedule", "plain=3"])

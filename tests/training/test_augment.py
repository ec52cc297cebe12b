"""DiffAugment: each policy's effect, gradients through it, determinism, and the config/CLI plumbing."""

import json

import pytest
import torch

from anycost.training import TrainConfig
from anycost.training.augment import diff_augment
from anycost.training.cli import parse_augment


def _rng(seed=0):
    return torch.Generator().manual_seed(seed)


def test_translation_moves_content_without_scaling_it():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    out = diff_augment(x, ("translation",), _rng())
    assert out.shape == x.shape
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1), "a single pixel 6 px from the border must survive a 2 px shift"
    positions = {tuple(p.tolist()) for p in out[:, 0].flatten(1).argmax(1).unsqueeze(1)}
    assert len(positions) > 5, "shifts must differ between samples"
    ys, xs = torch.nonzero(out[:, 0], as_tuple=True)[1:]
    assert (ys - 8).abs().max() <= 2 and (xs - 8).abs().max() <= 2
    border = torch.ones(8, 1, 16, 16)
    assert diff_augment(border, ("translation",), _rng()).min() == 0, "shifted-in pixels are zero"


def test_cutout_zeroes_at_most_a_quarter():
    x = torch.ones(32, 3, 16, 16)
    out = diff_augment(x, ("cutout",), _rng())
    zeroed = (out == 0).all(dim=1).float().mean(dim=(1, 2))
    assert zeroed.max() <= 0.25 and zeroed.min() > 0
    assert torch.all((out == 0) | (out == 1))


def test_color_changes_each_sample_differently():
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    out = diff_augment(x, ("color",), _rng())
    assert not torch.allclose(out, x)
    assert out.mean(dim=(1, 2, 3)).std() > 0.05


def test_deterministic_per_generator_and_differentiable():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    policy = ("color", "translation", "cutout")
    a, b = diff_augment(x, policy, _rng(1)), diff_augment(x, policy, _rng(1))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, diff_augment(x, policy, _rng(2)))
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, (), _rng()), x)


def test_config_and_cli_plumbing():
    assert TrainConfig().augment == ("color", "translation", "cutout")
    old = json.loads(TrainConfig().to_json())
    del old["augment"]
    assert TrainConfig.from_json(json.dumps(old)).augment == (), "runs saved before augmentation had none"
    with pytest.raises(ValueError, match="augmentations"):
        TrainConfig(augment=("flip",))
    assert parse_augment("none") == ()
    assert parse_augment("cutout, color") == ("cutout", "color")
    with pytest.raises(Exception, match="augmentations"):
        parse_augment("color,color")


def test_the_trainer_augments_what_d_sees(tmp_path):
    from anycost.models.stylegan2 import GeneratorArch
    from anycost.training import Trainer

    arch = GeneratorArch(16, channel_multiplier=1 / 32, channel_max=32, style_dim=16, n_mlp=2)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=_rng())

    def d_loss(augment):
        cfg = TrainConfig(data="test", arch=arch, schedule=(("plain", 1),), batch=4, augment=augment)
        return Trainer(cfg, images, tmp_path / "_".join(augment or ("none",)), progress=False).train_step()["d"]

    assert d_loss(()) != d_loss(("cutout",))

"""The SlimGAN trainer on tiny configs: what one step updates, D's losses summed over widths, bit-exact resume,
the run folder, the unconditional RGB case and bad inputs."""

import copy
import json

import pytest
import torch

from anycost.fileio import CheckpointError
from anycost.models.slimgan import load_generator
from anycost.training.slimgan import SlimTrainer, hinge_d_loss, load_slim_training_state
from anycost.training.trainer import step_generator


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def changed(before, module, prefix):
    """Whether any parameter whose name starts with `prefix` changed."""
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters() if k.startswith(prefix))


def test_one_step_updates_every_width(tiny_config, tiny_data):
    cfg = tiny_config(d_mode="shared", n_share=2)
    trainer = SlimTrainer(cfg, *tiny_data(cfg), progress=False)
    G0, D0 = snapshot(trainer.G), snapshot(trainer.D)
    log = trainer.train_step()
    assert set(log) == {"d", "distill", "g_0.25", "g_0.5", "g_0.75", "g_1"}
    assert all(torch.isfinite(torch.tensor(v)) for v in log.values())
    for i in range(len(cfg.arch.widths)):  # every width's private affine and every width's discriminator moved
        assert changed(G0, trainer.G, f"norms.0.gamma.{i}") and changed(G0, trainer.G, f"norms.0.beta.{i}")
        assert changed(D0, trainer.D, f"branches.{i}.")
    assert changed(G0, trainer.G, "norms.0.class_gamma") and changed(D0, trainer.D, "shared.")
    assert trainer.step == 1


def test_one_width_alone_leaves_the_other_channels(tiny_config, tiny_data):
    """The individual baseline: width 0.5 trained alone updates the leading half of the weights only."""
    cfg = tiny_config(widths=(0.5,), distill="none")
    trainer = SlimTrainer(cfg, *tiny_data(cfg), progress=False)
    before = trainer.G.l1.weight.detach().clone()
    log = trainer.train_step()
    assert set(log) == {"d", "g_0.5"}  # no distillation term
    rows = 16 * cfg.arch.width_channels(0.5)[0]  # 4 x 4 map of the leading channels
    after = trainer.G.l1.weight.detach()
    assert not torch.equal(after[:rows], before[:rows]) and torch.equal(after[rows:], before[rows:])
    assert len(trainer.D.branches) == 1  # one full-width discriminator


@pytest.mark.parametrize("mode", ["shared", "same"])
def test_d_step_sums_the_losses_of_every_width(tiny_config, tiny_data, mode):
    """The gradients D steps with are the sum over widths of each width's hinge-loss gradient (accumulated, not
    replaced), and one D step follows all of them."""
    cfg = tiny_config(d_mode=mode)
    trainer = SlimTrainer(cfg, *tiny_data(cfg), progress=False)
    G0, D0 = copy.deepcopy(trainer.G), copy.deepcopy(trainer.D)  # spectral norm's vectors as before the step
    steps = []
    trainer.opt_D.step = lambda: steps.append(1)  # keep the weights, count the optimiser steps
    trainer.d_step(step_generator(cfg.seed, 0, 0))
    assert steps == [1]
    got = {k: p.grad for k, p in trainer.D.named_parameters() if p.grad is not None}
    rng = step_generator(cfg.seed, 0, 0)  # the same draws, in the same order
    x, y = trainer.reals(rng)
    params = dict(D0.named_parameters())
    expected = {k: torch.zeros_like(p) for k, p in params.items()}
    for width in cfg.arch.widths:
        z, y_fake = trainer.latents(rng)
        with torch.no_grad():
            fake = G0(z, y_fake, width=width)
        loss = hinge_d_loss(D0(x, y, width=width), D0(fake, y_fake, width=width))
        for k, g in zip(params, torch.autograd.grad(loss, list(params.values()), allow_unused=True)):
            if g is not None:
                expected[k] += g
    assert {k for k, g in expected.items() if g.abs().sum() > 0} <= set(got)
    for k, g in got.items():
        torch.testing.assert_close(g, expected[k], rtol=1e-5, atol=1e-7)
    for branch in range(len(trainer.D.branches)):  # every width's discriminator kept its gradient
        assert any(k.startswith(f"branches.{branch}.") and g.abs().sum() > 0 for k, g in got.items())


def test_resume_is_bit_exact(tiny_config, tiny_data, tmp_path):
    """4 steps in one go equal 2 steps, a checkpoint, a new trainer from it and 2 more: bit for bit (same thread
    count, same device), weights, EMA copy, optimiser states and log."""
    cfg = tiny_config(n_dis=2, ema=0.9)
    data = tiny_data(cfg)
    straight = SlimTrainer(cfg, *data, out_dir=tmp_path / "a", progress=False)
    straight.train()
    first = SlimTrainer(cfg, *data, out_dir=tmp_path / "b", progress=False)
    first.train(until=2)
    with open(tmp_path / "b" / "log.jsonl", "a") as f:  # a step logged after the checkpoint, then lost
        f.write(json.dumps({"step": 3}) + "\n")
    resumed = SlimTrainer.resume(tmp_path / "b" / "latest.pt", *data, progress=False)
    assert resumed.step == 2
    resumed.train()
    for name in ("G", "D", "G_ema", "opt_G", "opt_D"):
        a, b = straight.state_dict()[name], resumed.state_dict()[name]
        assert _equal(a, b), name
    logs = [[{k: v for k, v in json.loads(line).items() if k not in ("time", "img_per_s")}
             for line in (tmp_path / d / "log.jsonl").read_text().splitlines()] for d in ("a", "b")]
    assert logs[0] == logs[1] and [r["step"] for r in logs[0]] == [1, 2, 3, 4]


def _equal(a, b) -> bool:
    """Nested state dicts equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_run_folder(tiny_config, tiny_data, tmp_path):
    from PIL import Image

    cfg = tiny_config(steps=2, sample_every=1)
    trainer = SlimTrainer(cfg, *tiny_data(cfg), out_dir=tmp_path, progress=False)
    trainer.train()
    state = torch.load(tmp_path / "latest.pt", weights_only=True)  # nothing executable inside
    assert state["step"] == 2 and state["G_ema"] is None
    grids = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert grids == ["step-000001.png", "step-000002.png"]
    with Image.open(tmp_path / "samples" / grids[-1]) as grid:  # 4 widths x 3 classes of 64 px cells, 2 px gaps
        assert grid.size == (3 * 66 + 2, 4 * 66 + 2)
    G = load_generator(trainer.export(tmp_path / "generator.safetensors"))
    assert G.widths == cfg.arch.widths and G.num_classes == 3
    for k, v in trainer.G.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, G.state_dict()[k]), k
    assert trainer.G.training  # the sample grids put G back in training mode


def test_unconditional_rgb_resnet(tiny_config, tiny_data):
    cfg = tiny_config("resnet", num_classes=0, img_channels=3, n_dis=1, distill="widest", d_mode="slimmable")
    trainer = SlimTrainer(cfg, *tiny_data(cfg), progress=False)
    assert tiny_data(cfg)[1] is None
    log = trainer.train_step()
    assert "distill" in log and all(torch.isfinite(torch.tensor(v)) for v in log.values())


def test_bad_inputs(tiny_config, tiny_data, tmp_path):
    cfg = tiny_config()
    images, labels = tiny_data(cfg)
    with pytest.raises(ValueError, match="give the labels"):
        SlimTrainer(cfg, images, None)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        SlimTrainer(cfg, images, labels + 3)
    with pytest.raises(ValueError, match="images must be uint8"):
        SlimTrainer(cfg, images.expand(-1, 3, -1, -1), labels)
    with pytest.raises(ValueError, match="unconditional"):
        SlimTrainer(cfg.replace(arch=type(cfg.arch)(**{**cfg.arch.to_dict(), "num_classes": 0})), images, labels)
    other = tmp_path / "other.pt"
    torch.save({"format": "anycost-train", "version": 1}, other)
    with pytest.raises(CheckpointError, match="not an anycost SlimGAN training checkpoint"):
        load_slim_training_state(other)
    with pytest.raises(FileNotFoundError):
        load_slim_training_state(tmp_path / "missing.pt")
    trainer = SlimTrainer(cfg, images, labels, out_dir=tmp_path, progress=False)
    trainer.train(until=2)
    with pytest.raises(ValueError, match="past the run's 1 steps"):
        SlimTrainer.resume(tmp_path / "latest.pt", images, labels, steps=1)

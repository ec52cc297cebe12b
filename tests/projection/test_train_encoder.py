"""Encoder training: steps run, resume is exact, the ablation drops the sub-generator term."""

import pytest
import torch

from anycost.projection.train_encoder import EncoderTrainConfig, holdout_split, run


@pytest.fixture
def images():
    return torch.randint(0, 256, (20, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)


def _cfg(**kw):
    return EncoderTrainConfig(steps=4, batch=4, perceptual="none", checkpoint_every=2, **kw)


def _log(out):
    import json

    return json.loads((out / "log.json").read_text())


def test_steps_run_and_full_only_drops_the_sub_term(tmp_path, tiny_generator, images):
    run(_cfg(), tiny_generator, images, tmp_path / "c")
    run(_cfg(full_only=True), tiny_generator, images, tmp_path / "f")
    both, full = _log(tmp_path / "c"), _log(tmp_path / "f")
    assert len(both) == 4 and set(both[0]) == {"step", "loss", "full", "latent", "sub"}
    assert set(full[0]) == {"step", "loss", "full", "latent"}
    assert all(abs(r["loss"] - r["full"] - r["latent"] - r.get("sub", 0)) < 1e-5 for r in both + full)
    assert (tmp_path / "c" / "encoder.safetensors").is_file()


def test_resume_is_exact_and_overwrite_is_refused(tmp_path, tiny_generator, images):
    straight = run(_cfg(), tiny_generator, images, tmp_path / "a")
    run(_cfg(), tiny_generator, images, tmp_path / "b", steps=2)
    resumed = run(_cfg(), tiny_generator, images, tmp_path / "b", resume=True, steps=4)
    assert _log(tmp_path / "a") == _log(tmp_path / "b")
    for (k, x), y in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(x, y), k
    with pytest.raises(FileExistsError, match="--resume"):
        run(_cfg(), tiny_generator, images, tmp_path / "a")


def test_resume_refuses_another_generator(tmp_path, tiny_generator, tiny_arch, images):
    from anycost.models.stylegan2 import Generator

    run(_cfg(), tiny_generator, images, tmp_path / "a", steps=2)
    torch.manual_seed(5)
    with pytest.raises(ValueError, match="for generator"):
        run(_cfg(), Generator(arch=tiny_arch), images, tmp_path / "a", resume=True)


def test_holdout_split_is_seeded_and_disjoint():
    train, held = holdout_split(100, 0.1, 0)
    assert len(held) == 10 and len(train) == 90 and not set(train.tolist()) & set(held.tolist())
    assert torch.equal(held, holdout_split(100, 0.1, 0)[1]) and not torch.equal(held, holdout_split(100, 0.1, 1)[1])


def test_bad_settings():
    with pytest.raises(ValueError, match="even"):
        EncoderTrainConfig(batch=3)

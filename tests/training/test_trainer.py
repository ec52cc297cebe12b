"""Tiny end-to-end training runs: every stage, exact resume, bad inputs, two-process gloo training."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from anycost.fileio import CheckpointError
from anycost.models.stylegan2 import GeneratorArch
from anycost.models.stylegan2.checkpoints import load_generator, read_metadata
from anycost.training import TrainConfig, Trainer
from anycost.training.checkpoint import load_training_state

#: 16 px; ratio 0.25 gives 32/16/8 channels at 4/8/16 px, so sub-generators really differ from the full one.
ARCH = GeneratorArch(16, channel_multiplier=1 / 32, channel_max=32, style_dim=16, n_mlp=2)


def _cfg(**kw):
    base = dict(data="test", arch=ARCH, schedule=(("plain", 2), ("multires", 2), ("adaptive", 3)), batch=4,
                r1_every=2, sample_every=100, checkpoint_every=100)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=g)


def _params(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_every_stage_trains_and_writes_its_results(images, tmp_path):
    trainer = Trainer(_cfg(pl_weight=1.0, pl_every=2), images, tmp_path, progress=False)
    before = _params(trainer.G)
    logs = [trainer.train_step() for _ in range(7)]
    assert all(torch.isfinite(torch.tensor(v)) for log in logs for v in log.values())
    assert {log["res"] for log in logs[:2]} == {16}  # plain: full resolution only
    assert "r1" in logs[0] and "pl" in logs[0] and "r1" not in logs[1]
    assert all("cons_mse" in log for log in logs[4:])  # adaptive: consistency with the full output
    assert all("cons_mse" not in log for log in logs[:4])
    assert any(not torch.equal(before[k], v) for k, v in trainer.G.state_dict().items())


def test_conditioned_d_sees_reals_and_fakes_with_the_same_arch_vectors(images, tmp_path):
    """In stage 3 the arch vector must carry no real/fake information, or D wins by reading it alone."""
    trainer = Trainer(_cfg(schedule=(("adaptive", 4),)), images, tmp_path, progress=False)
    seen = []
    forward = trainer.D.forward
    trainer.D.forward = lambda x, arch=None: seen.append(arch) or forward(x, arch)
    for _ in range(4):
        seen.clear()
        trainer.train_step()
        real, fake = seen[0], seen[1]  # D step: reals, then fakes
        assert real is not None and real.abs().sum() > 0
        torch.testing.assert_close(real, fake)


@pytest.mark.parametrize("full_res_teacher", [True, False])
def test_adaptive_consistency_teacher_is_the_full_resolution_output(images, tmp_path, monkeypatch, full_res_teacher):
    """Lower-resolution steps distil every sub-generator, the full-width one included, from the 16 px image."""
    from anycost.training import trainer as trainer_module

    cfg = _cfg(schedule=(("adaptive", 12),), resolution_consistency=full_res_teacher)
    trainer = Trainer(cfg, images, tmp_path, progress=False)
    outputs, pairs = [], []
    forward, consistency = trainer.G.forward, trainer_module.losses.consistency_loss
    trainer.G.forward = lambda w, config=None, **kw: outputs.append((config, forward(w, config=config, **kw))) \
        or outputs[-1][1]
    monkeypatch.setattr(trainer_module.losses, "consistency_loss",
                        lambda sub, teacher, *a: pairs.append((sub, teacher)) or consistency(sub, teacher, *a))
    seen = set()
    for _ in range(12):
        outputs.clear()
        pairs.clear()
        res = trainer.train_step()["res"]
        seen.add(res < 16)
        full = [out for config, out in outputs if config == config.full(ARCH, 16 if full_res_teacher else res)]
        assert len(pairs) == (3 if full_res_teacher and res < 16 else 2)
        for sub, teacher in pairs:
            assert sub.shape[-1] == res
            assert any(teacher is out for out in full)
    assert seen == {True, False}


def test_run_writes_checkpoints_samples_log_and_generator(images, tmp_path):
    trainer = Trainer(_cfg(), images, tmp_path, progress=False, snapshot_every=3)
    trainer.train()
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step-000003.pt", "step-000006.pt"]
    assert load_training_state(tmp_path / "snapshots" / "step-000003.pt")["step"] == 3
    for stage in ("plain", "multires", "adaptive"):
        assert (tmp_path / f"stage-{stage}.pt").is_file()
        assert load_generator(tmp_path / f"stage-{stage}.safetensors").arch == ARCH
    # the model before stage 3: stage 2's EMA generator with its channels sorted, the same full output
    start, multires = (tmp_path / f"stage-{name}.safetensors" for name in ("adaptive-start", "multires"))
    assert read_metadata(start)["step"] == read_metadata(multires)["step"] == 4
    start, multires = load_generator(start), load_generator(multires)
    assert not torch.equal(start.convs[0].conv.weight, multires.convs[0].conv.weight)
    w = multires.mapping(torch.randn(3, ARCH.style_dim, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        expected = multires(w, noise="const")
        # Sorting permutes every modulated layer's input channels, so each convolution adds its Cin x 9 products
        # in another order and float32 rounding moves its output by a few ulps, compounding over the 8 layers.
        # Allow 128 ulps (eps = 2**-23) of the image's largest value: ~1.1e-4 here, ~40x the 2.6e-6 measured on
        # AMD Zen 4; leaving one modulation bias unpermuted moves the image by 5e-2.
        atol = 128 * torch.finfo(expected.dtype).eps * expected.abs().max().item()
        torch.testing.assert_close(start(w, noise="const"), expected, atol=atol, rtol=0)
    assert (tmp_path / "samples" / "step-000007.png").is_file()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 8))
    assert load_training_state(tmp_path / "latest.pt")["step"] == 7


def test_resume_reproduces_the_uninterrupted_run(images, tmp_path):
    straight = Trainer(_cfg(), images, tmp_path / "a", progress=False)
    straight_logs = [straight.train_step() for _ in range(7)]

    first = Trainer(_cfg(), images, tmp_path / "b", progress=False)
    first.train(until=3)  # stops inside the multires stage, checkpointed at step 3
    first.train_step()  # one step that no checkpoint saw: a crash loses it
    first._log({"step": 4})
    resumed = Trainer.resume(tmp_path / "b" / "latest.pt", images, progress=False)
    assert resumed.step == 3
    resumed_logs = [resumed.train_step() for _ in range(4)]
    assert resumed_logs == straight_logs[3:]
    for k, v in straight.G_ema.state_dict().items():
        assert torch.equal(v, resumed.G_ema.state_dict()[k]), k
    resumed.step = 3
    resumed._trim_log()  # what train() does first: the lost step's record goes
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]


def test_bad_inputs_give_clear_errors(images, tmp_path):
    with pytest.raises(ValueError, match="snapshot_every"):
        Trainer(_cfg(), images, tmp_path, snapshot_every=-1)
    with pytest.raises(ValueError, match="16 px"):
        Trainer(_cfg(arch=GeneratorArch(32, 1 / 32, 32, 16, 2)), images, tmp_path)
    with pytest.raises(ValueError, match="uint8"):
        Trainer(_cfg(), images.float(), tmp_path)
    with pytest.raises(ValueError, match="order"):
        _cfg(schedule=(("adaptive", 1), ("plain", 1)))
    with pytest.raises(ValueError, match="unknown stage"):
        _cfg(schedule=(("fancy", 1),))
    bad = tmp_path / "latest.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        Trainer.resume(bad, images)
    assert bad.read_bytes() == b"not a checkpoint"


def test_config_json_round_trip():
    cfg = _cfg(perceptual="hed-vgg")
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="unknown training config fields"):
        TrainConfig.from_json(json.dumps({**json.loads(cfg.to_json()), "extra": 1}))
    older = json.loads(cfg.to_json())
    del older["resolution_consistency"]  # written before the field: its stage 3 had the same-resolution teacher
    del older["full_resolution_prob"]  # likewise: resolutions were drawn uniformly
    old = TrainConfig.from_json(json.dumps(older))
    assert cfg.resolution_consistency and not old.resolution_consistency and old.full_resolution_prob is None
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="full_resolution_prob"):
            _cfg(full_resolution_prob=bad)


@pytest.mark.parametrize("full_prob", [0.0, 1.0])
def test_full_resolution_prob_decides_the_multires_and_adaptive_resolutions(images, tmp_path, full_prob):
    cfg = _cfg(schedule=(("multires", 4), ("adaptive", 4)), full_resolution_prob=full_prob)
    trainer = Trainer(cfg, images, tmp_path, progress=False)
    resolutions = {trainer.train_step()["res"] for _ in range(8)}
    assert resolutions == {16} if full_prob == 1.0 else 16 not in resolutions


def _ddp_worker(rank, world, port, out, images):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        trainer = Trainer(_cfg(), images, out, rank=rank, world=world, progress=False)
        for _ in range(5):
            trainer.train_step()
        torch.save({"G": trainer.G.state_dict(), "D": trainer.D.state_dict()}, f"{out}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_two_cpu_processes_stay_in_sync(images, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), images), nprocs=2, join=True)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for net in ("G", "D"):
        for k, v in states[0][net].items():
            assert torch.equal(v, states[1][net][k]), f"{net}.{k} differs between ranks"
    single = Trainer(_cfg(), images, tmp_path / "single", progress=False)
    for _ in range(5):
        single.train_step()
    # The ranks drew different data, so their averaged steps differ from one process's. Not merely unequal:
    # the ranks ran 1 intra-op thread and this process its default, and that alone moves the weights by
    # ~3e-5 after 5 steps (1 vs 2 threads, AMD Zen 4); other data moves some of them by more than 1.
    assert any(not torch.allclose(v, states[0]["G"][k], rtol=0, atol=1e-2) for k, v in single.G.state_dict().items())

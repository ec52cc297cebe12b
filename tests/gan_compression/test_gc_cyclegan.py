"""The CycleGAN teacher of the unpaired emoji task and its students on pseudo pairs: steps, exact resume, the
discriminator a student inherits, the commands end to end, evaluation and search, one-line errors."""

import json

import pytest
import torch
from gc_fixtures import SEARCH, TASK, UNPAIRED, error_of, needs_emoji, run_cli, tiny_unpaired_config

from anycost.gan_compression import CycleGANRun, DistillRun, RunConfig, validation_inputs
from anycost.gan_compression.evaluate import evaluation_set, score_generators
from anycost.gan_compression.run import load_run_state
from anycost.models.i2i import I2IArch, load_generator, read_metadata

pytestmark = needs_emoji
TINY = ["--steps", "2", "--threads", "1", "--no-progress", "--checkpoint-every", "1"]


def params(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_a_step_changes_both_generators_and_both_discriminators(tmp_path):
    run = CycleGANRun(tiny_unpaired_config(), tmp_path, progress=False)
    assert run.cfg.batch == 1 and run.cfg.lambda_recon == 10 and run.cfg.decay_fraction == 0.5  # CycleGAN's
    assert run.D.in_channels == run.D_A.in_channels == 3  # the image alone, no input beside it
    assert not torch.equal(run.G.stem.weight, run.G_BA.stem.weight)  # two generators, initialised apart
    before = {name: params(m) for name, m in run.modules.items()}
    log = run.train_step(run.step_rng())
    assert set(log) == {"d", "d_a", "g_gan", "cycle", "identity"} and log["identity"] > 0
    for name, module in run.modules.items():
        changed = [not torch.equal(v, module.state_dict()[k]) for k, v in before[name].items() if "bias" not in k]
        assert changed and all(changed), name


def test_without_the_identity_term(tmp_path):
    run = CycleGANRun(tiny_unpaired_config(lambda_identity=0.0), tmp_path, progress=False)
    assert run.train_step(run.step_rng())["identity"] == 0


def test_n_steps_equal_half_then_resume_then_half(tmp_path):
    straight = CycleGANRun(tiny_unpaired_config(), tmp_path / "a", progress=False)
    straight.train()
    first = CycleGANRun(tiny_unpaired_config(), tmp_path / "b", progress=False)
    first.train(until=2)
    resumed = CycleGANRun(tiny_unpaired_config(), tmp_path / "b", progress=False)
    resumed.load_state_dict(torch.load(tmp_path / "b" / "latest.pt", weights_only=True))
    assert resumed.step == 2
    resumed.train()
    for name in straight.modules:
        for k, v in straight.modules[name].state_dict().items():
            assert torch.equal(v, resumed.modules[name].state_dict()[k]), (name, k)
    for name, opt in straight.optimizers.items():
        assert opt.state_dict()["state"][0]["step"] == resumed.optimizers[name].state_dict()["state"][0]["step"]
    drop = {"time", "step_s"}
    logs = [[{k: v for k, v in json.loads(line).items() if k not in drop}
             for line in (run.out_dir / "log.jsonl").read_text().splitlines()] for run in (straight, resumed)]
    assert logs[0] == logs[1] and [r["step"] for r in logs[0]] == [1, 2, 3, 4]
    assert (tmp_path / "b" / "samples" / "step-000004.png").is_file()


def test_the_teacher_file_is_the_a_to_b_generator(cyclegan_dir):
    G = load_generator(cyclegan_dir / "teacher.safetensors")
    state = load_run_state(cyclegan_dir / "latest.pt")
    assert set(state["modules"]) == {"G", "G_BA", "D", "D_A"}
    assert all(torch.equal(v, state["modules"]["G"][k]) for k, v in G.state_dict().items())
    assert read_metadata(cyclegan_dir / "teacher.safetensors")["task"] == UNPAIRED


@pytest.mark.parametrize("role", ["distill", "supernet"])
def test_pseudo_pair_distillation_pulls_to_the_teachers_output(role, cyclegan_dir, tmp_path, monkeypatch):
    from anycost.gan_compression import losses

    run = DistillRun(tiny_unpaired_config(role, cyclegan_dir), tmp_path, progress=False)
    teacher_d = load_run_state(cyclegan_dir / "latest.pt")["modules"]["D"]  # the teacher's D of B images
    assert run.D.in_channels == 3 and all(torch.equal(v, run.D.state_dict()[k]) for k, v in teacher_d.items())
    seen, judged = [], []
    real_l1 = losses.reconstruction_loss
    monkeypatch.setattr(losses, "reconstruction_loss", lambda out, to: seen.append(to) or real_l1(out, to))
    run.D.register_forward_hook(lambda module, args, out: judged.append(args[0]))
    a, b = run.reals(run.step_rng())
    G0 = params(run.G)
    log = run.train_step(run.step_rng())
    with torch.no_grad():
        torch.testing.assert_close(seen[0], run.teacher(a))
    assert torch.equal(judged[0], b)  # D's real images: B images, alone
    assert log["distill"] > 0 and not torch.equal(G0["stem.weight"], run.G.stem.weight)


def test_the_commands_train_a_cyclegan_and_distil_it_with_pseudo_pairs(tmp_path, capsys):
    teacher = tmp_path / "cyclegan"
    assert run_cli("train-teacher", "--task", UNPAIRED, "--ngf", 4, "--n-blocks", 3, "--ndf", 4, "--out", teacher,
                   *TINY) == 0
    saved = RunConfig.from_json((teacher / "config.json").read_text())
    assert saved.role == "cyclegan" and saved.batch == 1 and saved.d_layers == 2  # 2 PatchGAN layers at 64 px
    assert run_cli("train-teacher", "--resume", "--out", teacher, "--steps", 3, "--no-progress") == 0
    assert load_run_state(teacher / "latest.pt")["step"] == 3
    student = tmp_path / "student"
    assert run_cli("distill", "--teacher", teacher, "--student-ngf", 4, "--out", student, *TINY) == 0
    saved = json.loads((student / "config.json").read_text())
    assert saved["recon_target"] == "teacher" and saved["lambda_recon"] == 10 and saved["lambda_distill"] == 0.01
    assert load_generator(student / "student.safetensors").arch.image_size == 64
    capsys.readouterr()
    err = error_of(capsys, "distill", "--teacher", teacher, "--recon-target", "real", "--out", tmp_path / "x", *TINY)
    assert "task emoji-yellow2toned is unpaired: it has no real targets" in err and "recon target 'teacher'" in err
    with pytest.raises(SystemExit):  # argparse names the tasks
        run_cli("train-teacher", "--task", "horse2zebra", "--out", tmp_path / "y", *TINY)
    assert "invalid choice: 'horse2zebra'" in capsys.readouterr().err


def test_run_config_checks_the_task_and_its_kind(cyclegan_dir):
    with pytest.raises(ValueError, match="task emoji-yellow2toned is unpaired: its teacher is trained by role "
                                         "'cyclegan', not 'teacher'"):
        tiny_unpaired_config("teacher")
    arch = I2IArch.resnet(4, n_blocks=3, image_size=32, step=4)
    with pytest.raises(ValueError, match=f"task {TASK} is paired: its teacher is trained by role 'teacher'"):
        RunConfig(role="cyclegan", task=TASK, generator=arch)
    with pytest.raises(ValueError, match="unknown task 'horse2zebra'; the tasks are"):
        RunConfig(role="teacher", task="horse2zebra", generator=arch)
    with pytest.raises(ValueError, match="unpaired: it has no real targets"):
        tiny_unpaired_config("distill", cyclegan_dir, recon_target="real")
    cfg = tiny_unpaired_config("supernet", cyclegan_dir)
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_evaluation_of_an_unpaired_task_scores_fid_against_domain_b(cyclegan_dir, tmp_path):
    inputs, targets, reals = evaluation_set(UNPAIRED, 6)
    assert targets is None and torch.equal(inputs, validation_inputs(UNPAIRED, 6))
    assert reals.shape[1:] == (3, 64, 64) and len(reals) > 500  # every B image, training and validation
    teacher = load_generator(cyclegan_dir / "teacher.safetensors")
    other = CycleGANRun(tiny_unpaired_config(seed=1), tmp_path, progress=False).G

    def extractor(images):  # a stand-in for the Inception network: per-channel means and deviations
        return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)

    rows = score_generators([("teacher", teacher), ("other", other)], inputs, None, reals=reals,
                            extractor=extractor, rounds=1, warmup=0, calls=1)
    assert rows[0].l1 == 0 and rows[1].l1 > 0  # L1 to the first generator's outputs
    assert rows[0].fid > 0 and rows[0].fid != rows[1].fid


def test_search_on_an_unpaired_supernet_compares_with_the_teacher(cyclegan_dir, tmp_path, capsys):
    supernet = tmp_path / "supernet"
    run = DistillRun(tiny_unpaired_config("supernet", cyclegan_dir, steps=1), supernet, progress=False)
    run.write_config()
    run.train()
    run.export()
    assert run_cli("search", "--supernet", supernet, "--budget-macs", 0.9, "--validate", 8, "--out",
                   tmp_path / "search", *SEARCH) == 0
    assert json.loads((tmp_path / "search" / "pareto.json").read_text())["metric"] == "l1 to the teacher"
    err = error_of(capsys, "search", "--supernet", supernet, "--budget-macs", 0.9, "--reference", "target",
                   "--out", tmp_path / "s2", *SEARCH)
    assert "task emoji-yellow2toned is unpaired: it has no targets" in err

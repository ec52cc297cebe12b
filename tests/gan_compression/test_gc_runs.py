"""Teacher, distillation and supernet runs on tiny configs: steps train, resume is exact, configs are drawn per step."""

import json

import pytest
import torch
from gc_fixtures import TASK, needs_fashion, student_config, tiny_config

from anycost.gan_compression import DistillRun, RunConfig, TeacherRun, sample_config
from anycost.gan_compression.distill import load_leading
from anycost.gan_compression.run import load_run_state
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, load_generator

pytestmark = needs_fashion


def params(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_one_teacher_step_changes_g_and_d(tmp_path):
    run = TeacherRun(tiny_config(), tmp_path, progress=False)
    G0, D0 = params(run.G), params(run.D)
    log = run.train_step(run.step_rng())
    assert set(log) == {"d", "g_gan", "l1"}
    for before, module in ((G0, run.G), (D0, run.D)):
        assert all(not torch.equal(v, module.state_dict()[k]) for k, v in before.items() if "bias" not in k)


def _same_state(a, b) -> None:
    for name in a.modules:
        for k, v in a.modules[name].state_dict().items():
            assert torch.equal(v, b.modules[name].state_dict()[k]), (name, k)


@pytest.mark.parametrize("role", ["teacher", "supernet"])
def test_n_steps_equal_half_then_resume_then_half(role, tmp_path, teacher_dir):
    def make(folder):
        cfg = tiny_config() if role == "teacher" else student_config(teacher_dir, "supernet")
        return (TeacherRun if role == "teacher" else DistillRun)(cfg, folder, progress=False)

    straight = make(tmp_path / "a")
    straight.train()
    first = make(tmp_path / "b")
    first.train(until=2)
    with open(tmp_path / "b" / "log.jsonl", "a") as f:  # a record of a step lost to the interruption
        f.write(json.dumps({"step": 3}) + "\n")
    resumed = make(tmp_path / "b")
    state = torch.load(tmp_path / "b" / "latest.pt", weights_only=True)  # plain tensors and containers
    resumed.load_state_dict(state)
    assert resumed.step == 2
    resumed.train()
    _same_state(straight, resumed)
    for run in (straight, resumed):
        records = [json.loads(line) for line in (run.out_dir / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records] == [1, 2, 3, 4]
    drop = {"time", "step_s"}
    logs = [[{k: v for k, v in json.loads(line).items() if k not in drop}
             for line in (run.out_dir / "log.jsonl").read_text().splitlines()] for run in (straight, resumed)]
    assert logs[0] == logs[1]
    assert (tmp_path / "b" / "samples" / "step-000004.png").is_file()
    assert load_run_state(tmp_path / "b" / "latest.pt")["step"] == 4


def test_supernet_steps_draw_different_configs_deterministically(tmp_path, teacher_dir):
    run = DistillRun(student_config(teacher_dir, "supernet"), tmp_path, progress=False)
    arch = run.G.arch
    configs = []
    for step in range(8):
        run.step = step
        configs.append(run.step_config())
        assert configs[-1] == sample_config(arch, run.step_rng(1)) == run.step_config()  # a function of the step
    assert len(set(configs)) == 8 and all(isinstance(c, I2IConfig) for c in configs)
    for c in configs:
        assert all(w % arch.step == 0 and w <= most for w, most in zip(c.widths, arch.widths))
    run.step = 0
    log = run.train_step(run.step_rng())
    assert tuple(log["widths"]) == configs[0].widths and log["distill"] > 0


def test_a_supernet_with_a_mac_window_trains_only_sub_networks_inside_it(tmp_path, teacher_dir):
    arch = student_config(teacher_dir, "supernet").generator
    all_macs = sorted({sample_config(arch, torch.Generator().manual_seed(s)).macs for s in range(200)})
    window = (all_macs[len(all_macs) // 3], all_macs[2 * len(all_macs) // 3])
    run = DistillRun(student_config(teacher_dir, "supernet", sample_macs=window), tmp_path, progress=False)
    configs = []
    for step in range(20):
        run.step = step
        configs.append(run.step_config())
        assert configs[-1] == sample_config(arch, run.step_rng(1), window)  # a function of the step
    assert all(window[0] <= c.macs <= window[1] for c in configs) and len(set(configs)) > 10
    run.step = 0
    assert tuple(run.train_step(run.step_rng())["widths"]) == configs[0].widths


def test_a_mac_window_without_sub_networks_is_refused_before_training(tmp_path, teacher_dir):
    arch = student_config(teacher_dir, "supernet").generator
    smallest, full = I2IConfig.smallest(arch).macs, I2IConfig.full(arch).macs
    assert I2IConfig.smallest(arch).widths == (arch.step,) * len(arch.widths)
    for window in ((1, smallest - 1), (full + 1, 2 * full)):
        with pytest.raises(ValueError, match="holds no sub-network of .* they have"):
            DistillRun(student_config(teacher_dir, "supernet", sample_macs=window), tmp_path, progress=False)
    with pytest.raises(ValueError, match="none of 10,000 random sub-networks .* widen the window"):
        DistillRun(student_config(teacher_dir, "supernet", sample_macs=(smallest + 1, smallest + 1)), tmp_path,
                   progress=False)
    assert not any(tmp_path.iterdir())


def test_distillation_starts_from_the_teachers_discriminator(tmp_path, teacher_dir):
    run = DistillRun(student_config(teacher_dir), tmp_path, progress=False)
    teacher_d = load_run_state(teacher_dir / "latest.pt")["modules"]["D"]
    assert all(torch.equal(v, run.D.state_dict()[k]) for k, v in teacher_d.items())
    assert run.taps == ((0, 1, 2, 3), (0, 1, 2, 3))
    G0, A0 = params(run.G), params(run.adapters)
    run.train_step(run.step_rng())
    assert not torch.equal(G0["stem.weight"], run.G.stem.weight) and not torch.equal(A0["0.weight"],
                                                                                      run.adapters[0].weight)
    path = run.export()
    assert load_generator(path).arch == run.G.arch


def test_a_reset_discriminator_starts_from_the_seed_not_the_teacher(tmp_path, teacher_dir):
    teacher_d = load_run_state(teacher_dir / "latest.pt")["modules"]["D"]
    runs = [DistillRun(student_config(teacher_dir, reset_discriminator=True, seed=seed), tmp_path / str(i),
                       progress=False) for i, seed in enumerate((0, 0, 1))]
    states = [run.D.state_dict() for run in runs]
    assert not all(torch.equal(v, states[0][k]) for k, v in teacher_d.items())
    assert all(torch.equal(v, states[1][k]) for k, v in states[0].items())  # the seed alone decides
    assert not all(torch.equal(v, states[2][k]) for k, v in states[0].items())
    # the student itself is the same as with the teacher's D
    kept = DistillRun(student_config(teacher_dir), tmp_path / "kept", progress=False)
    assert all(torch.equal(v, kept.G.state_dict()[k]) for k, v in runs[0].G.state_dict().items())


def test_a_supernet_starts_from_a_smaller_student_only(teacher_dir):
    supernet = I2IGenerator(I2IArch.resnet(8, n_blocks=3, image_size=32, step=4, separable=True))
    student = I2IGenerator(I2IArch.resnet(4, n_blocks=3, image_size=32, step=4, separable=True))
    load_leading(supernet, student)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    config = I2IConfig(supernet.arch, student.arch.widths)
    torch.testing.assert_close(supernet(x, config=config), student(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="width of layer 'stem' is 8, above the supernet's 4"):
        load_leading(student, supernet)
    with pytest.raises(ValueError, match="blocks, their kind and the image channels must match"):
        load_leading(supernet, I2IGenerator(I2IArch.resnet(4, n_blocks=3, image_size=32, step=4)))


@pytest.mark.parametrize("recon_target", ["real", "teacher"])
def test_the_l1_term_pulls_to_the_target_or_the_teachers_output(recon_target, tmp_path, teacher_dir, monkeypatch):
    from anycost.gan_compression import losses

    run = DistillRun(student_config(teacher_dir, recon_target=recon_target), tmp_path, progress=False)
    seen = []
    real_l1 = losses.reconstruction_loss
    monkeypatch.setattr(losses, "reconstruction_loss", lambda out, to: seen.append(to) or real_l1(out, to))
    rng = run.step_rng()
    inputs, targets = run.reals(run.step_rng())
    run.train_step(rng)
    with torch.no_grad():
        expected = targets if recon_target == "real" else run.teacher(inputs)
    torch.testing.assert_close(seen[0], expected)


def test_run_config_round_trip_schedule_and_bad_values(teacher_dir):
    cfg = student_config(teacher_dir, "supernet")
    assert RunConfig.from_json(cfg.to_json()) == cfg
    cfg = tiny_config(steps=8, decay_fraction=0.75)
    assert [cfg.lr_at(s) / cfg.lr for s in range(8)] == [1, 1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6]
    with pytest.raises(ValueError, match="needs the teacher run and its generator's arch"):
        tiny_config("distill")
    with pytest.raises(ValueError, match="role must be one of"):
        tiny_config("student")
    with pytest.raises(ValueError, match="batch must be a positive int"):
        tiny_config(batch=0)
    with pytest.raises(ValueError, match="GAN loss must be one of"):
        tiny_config(gan_loss="wgan")
    with pytest.raises(ValueError, match="recon_target must be one of"):
        student_config(teacher_dir, recon_target="fake")
    with pytest.raises(ValueError, match="a teacher run has no teacher to reconstruct"):
        tiny_config(recon_target="teacher")
    with pytest.raises(ValueError, match="reset_discriminator is for a distill or supernet run .* not a teacher run"):
        tiny_config(reset_discriminator=True)
    with pytest.raises(ValueError, match="reset_discriminator must be true or false, got 'yes'"):
        student_config(teacher_dir, reset_discriminator="yes")
    reset = student_config(teacher_dir, reset_discriminator=True)
    assert RunConfig.from_json(reset.to_json()) == reset
    windowed = student_config(teacher_dir, "supernet", sample_macs=[1000, 2000])
    assert windowed.sample_macs == (1000, 2000) and RunConfig.from_json(windowed.to_json()) == windowed
    for window in ((2000, 1000), (0, 10), (5,), (1, 2, 3)):
        with pytest.raises(ValueError, match="sample_macs must be .low, high. with 0 < low <= high"):
            student_config(teacher_dir, "supernet", sample_macs=window)
    with pytest.raises(ValueError, match="sample_macs is the MAC window of a supernet run's sub-networks; a "
                       "distill run"):
        student_config(teacher_dir, "distill", sample_macs=(1000, 2000))


def test_each_run_class_refuses_other_roles(teacher_dir, tmp_path):
    with pytest.raises(ValueError, match="TeacherRun trains role.s. teacher, got 'supernet'"):
        TeacherRun(student_config(teacher_dir, "supernet"), tmp_path)
    with pytest.raises(ValueError, match="DistillRun trains role.s. distill, supernet, got 'teacher'"):
        DistillRun(tiny_config(), tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_a_generator_that_does_not_fit_the_task(tmp_path):
    grey = I2IArch.resnet(4, n_blocks=3, image_size=32, step=4, in_channels=1)
    with pytest.raises(ValueError, match=f"the generator maps 1-channel to 3-channel images of 32 px; task {TASK} "
                                         "pairs 3-channel images of 32 px"):
        TeacherRun(tiny_config(generator=grey), tmp_path)
    big = I2IArch.resnet(4, n_blocks=3, image_size=64, step=4)
    with pytest.raises(ValueError, match="images of 64 px; task"):
        TeacherRun(tiny_config(generator=big), tmp_path)

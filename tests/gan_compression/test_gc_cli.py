"""`anycost gan-compression train-teacher | distill`: a few steps end to end, resume, and one-line errors."""

import json

import pytest
from gc_fixtures import error_of, needs_fashion, run_cli

from anycost.gan_compression.run import load_run_state
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, load_generator, read_metadata, save_generator

pytestmark = needs_fashion
TINY = ["--steps", "2", "--batch", "2", "--threads", "1", "--no-progress", "--checkpoint-every", "1"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "teacher"
    assert run_cli("train-teacher", "--out", out, "--ngf", 4, "--n-blocks", 3, "--ndf", 4, *TINY) == 0
    return out


def test_train_teacher_writes_the_run_folder(teacher):
    assert {p.name for p in teacher.iterdir()} == {"config.json", "latest.pt", "log.jsonl", "samples",
                                                   "teacher.safetensors"}
    assert json.loads((teacher / "config.json").read_text())["role"] == "teacher"
    assert (teacher / "samples" / "step-000002.png").is_file()
    assert load_generator(teacher / "teacher.safetensors").arch.widths == (4, 8, 16, 16, 16, 16, 8, 4)
    assert read_metadata(teacher / "teacher.safetensors")["task"] == "fmnist-edges2shoes"


def test_distill_a_supernet_then_resume_longer(teacher, tmp_path, capsys):
    out = tmp_path / "supernet"
    assert run_cli("distill", "--teacher", teacher, "--supernet", "--student-ngf", 4, "--out", out, *TINY) == 0
    assert load_run_state(out / "latest.pt")["step"] == 2
    assert run_cli("distill", "--resume", "--out", out, "--steps", 3, "--no-progress") == 0
    assert "resumed" in capsys.readouterr().out and load_run_state(out / "latest.pt")["step"] == 3
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and all(len(r["widths"]) == 8 for r in records)
    assert load_generator(out / "supernet.safetensors").arch.separable


def test_a_supernet_in_a_mac_window(teacher, tmp_path, capsys):
    out = tmp_path / "windowed"
    assert run_cli("distill", "--teacher", teacher, "--supernet", "--student-ngf", 8, "--sample-macs", "0.4:0.7",
                   "--out", out, *TINY) == 0
    arch = load_generator(out / "supernet.safetensors").arch
    full = I2IConfig.full(arch).macs
    low, high = json.loads((out / "config.json").read_text())["sample_macs"]
    assert (low, high) == (round(0.4 * full), round(0.7 * full))
    for record in map(json.loads, (out / "log.jsonl").read_text().splitlines()):
        assert low <= I2IConfig(arch, tuple(record["widths"])).macs <= high
    assert "takes LOW:HIGH" in error_of(capsys, "distill", "--teacher", teacher, "--supernet", "--sample-macs",
                                        "0.5", "--out", tmp_path / "a", *TINY)
    assert "a distill run trains one network" in error_of(capsys, "distill", "--teacher", teacher, "--sample-macs",
                                                           "0.4:0.7", "--out", tmp_path / "b", *TINY)
    assert "holds no sub-network" in error_of(capsys, "distill", "--teacher", teacher, "--supernet",
                                              "--sample-macs", "10G:20G", "--out", tmp_path / "c", *TINY)
    assert not any((tmp_path / name).exists() for name in "abc")


def test_a_student_arch_from_scratch_and_an_output_distilled_student(teacher, tmp_path):
    widths = (4, 8, 12, 8, 12, 4, 8, 4)
    scratch = tmp_path / "scratch"
    assert run_cli("train-teacher", "--out", scratch, "--widths", ",".join(map(str, widths)), "--separable",
                   "--ndf", 4, *TINY) == 0
    arch = load_generator(scratch / "teacher.safetensors").arch
    assert arch.widths == widths and arch.separable
    out = tmp_path / "output-distilled"
    assert run_cli("distill", "--teacher", teacher, "--student-ngf", 4, "--recon-target", "teacher",
                   "--lambda-distill", 0, "--out", out, *TINY) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["recon_target"] == "teacher" and saved["lambda_distill"] == 0
    assert saved["reset_discriminator"] is False
    reset = tmp_path / "reset-d"
    assert run_cli("distill", "--teacher", teacher, "--student-ngf", 4, "--reset-discriminator", "--out", reset,
                   *TINY) == 0
    assert json.loads((reset / "config.json").read_text())["reset_discriminator"] is True


def test_errors_are_one_line(teacher, tmp_path, capsys):
    assert "exists: pass --resume" in error_of(capsys, "train-teacher", "--out", teacher, *TINY)
    assert "no GAN Compression training state at" in error_of(capsys, "distill", "--resume", "--out", tmp_path / "x")
    assert "holds a teacher run" in error_of(capsys, "distill", "--resume", "--out", teacher)
    assert "--teacher is needed" in error_of(capsys, "distill", "--out", tmp_path / "y", *TINY)
    assert "no teacher.safetensors in" in error_of(capsys, "distill", "--teacher", tmp_path, "--out",
                                                   tmp_path / "y", *TINY)
    wide = I2IGenerator(I2IArch.resnet(8, n_blocks=3, image_size=32, step=4, separable=True))
    save_generator(wide, tmp_path / "wide.safetensors")
    err = error_of(capsys, "distill", "--teacher", teacher, "--supernet", "--student-ngf", 4, "--init-student",
                   tmp_path / "wide.safetensors", "--out", tmp_path / "z", *TINY)
    assert "width of layer 'stem' is 8, above the supernet's 4" in err
    grey = I2IGenerator(I2IArch.resnet(4, n_blocks=3, image_size=32, step=4, separable=True, in_channels=1))
    save_generator(grey, tmp_path / "grey.safetensors")
    err = error_of(capsys, "distill", "--teacher", teacher, "--student-ngf", 4, "--init-student",
                   tmp_path / "grey.safetensors", "--out", tmp_path / "z", *TINY)
    assert "the image channels must match" in err
    err = error_of(capsys, "distill", "--teacher", teacher, "--student-widths", "4,8,16,8,4", "--out",
                   tmp_path / "z", *TINY)
    assert "widths needs stem, down1, down2, at least one residual block" in err
    assert "width of layer 'stem' must be a multiple of the step 4" in error_of(
        capsys, "distill", "--teacher", teacher, "--student-ngf", 6, "--out", tmp_path / "z", *TINY)
    with pytest.raises(SystemExit):
        run_cli("train-teacher", "--out", tmp_path / "z", "--task", "horse2zebra")

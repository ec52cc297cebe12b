"""Tiny GAN Compression runs on the real tasks (they skip without Fashion-MNIST or the emoji font): finished teacher,
supernet and CycleGAN run folders."""

import pytest
from gc_fixtures import emoji_missing, fashion_missing, tiny_config, tiny_unpaired_config


@pytest.fixture(scope="session")
def teacher_dir(tmp_path_factory):
    """A teacher run of 2 steps: its folder (latest.pt, teacher.safetensors)."""
    if fashion_missing():
        pytest.skip("Fashion-MNIST absent")
    from anycost.gan_compression import TeacherRun

    folder = tmp_path_factory.mktemp("teacher")
    run = TeacherRun(tiny_config(steps=2), folder, progress=False)
    run.train()
    run.export()
    return folder


@pytest.fixture(scope="session")
def supernet_dir(teacher_dir, tmp_path_factory):
    """A supernet run of 2 steps distilled from `teacher_dir`: its folder (latest.pt, supernet.safetensors)."""
    from gc_fixtures import student_config

    from anycost.gan_compression import DistillRun

    folder = tmp_path_factory.mktemp("supernet")
    run = DistillRun(student_config(teacher_dir, "supernet", steps=2), folder, progress=False)
    run.write_config()
    run.train()
    run.export()
    return folder


@pytest.fixture(scope="session")
def cyclegan_dir(tmp_path_factory):
    """A CycleGAN run of 2 steps on the unpaired emoji task: its folder (latest.pt, teacher.safetensors)."""
    if emoji_missing():
        pytest.skip("the emoji font or package is absent")
    from anycost.gan_compression.cyclegan import CycleGANRun

    folder = tmp_path_factory.mktemp("cyclegan")
    run = CycleGANRun(tiny_unpaired_config(steps=2), folder, progress=False)
    run.train()
    run.export()
    return folder

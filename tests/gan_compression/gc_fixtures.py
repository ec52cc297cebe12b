"""Helpers of the GAN Compression tests: tiny run configs on the real tasks, the skips without Fashion-MNIST or the
emoji font and the command-line helpers (a module of its own name: several test folders have a conftest.py, so
`from conftest import` is ambiguous)."""

import pytest

from anycost.cli import main
from anycost.models.i2i import I2IArch

TASK = "fmnist-edges2shoes"
EMOJI_TASK = "emoji-edges2emoji"
UNPAIRED = "emoji-yellow2toned"
#: A tiny `gan-compression search`: 8 fitness pairs (and the default 256 after them to check the pick on).
SEARCH = ["--samples", 8, "--population", 4, "--parents", 2, "--crossover", 2, "--mutation", 2, "--generations", 2,
          "--threads", 1, "--no-progress"]


def fashion_missing() -> bool:
    from anycost.data.mnist import find_fashion_mnist

    try:
        find_fashion_mnist()
    except FileNotFoundError:
        return True
    return False


needs_fashion = pytest.mark.skipif(fashion_missing(), reason="Fashion-MNIST absent: apt-get install "
                                   "dataset-fashion-mnist")


def emoji_missing() -> bool:
    """Whether the emoji tasks cannot be built here (no `emoji` package or no Noto Color Emoji font)."""
    from anycost.data.emoji import find_font

    try:
        import emoji  # noqa: F401

        find_font()
    except (ImportError, FileNotFoundError):
        return True
    return False


needs_emoji = pytest.mark.skipif(emoji_missing(), reason="the emoji font or package is absent: apt-get install "
                                 "fonts-noto-color-emoji; pip install emoji")


def tiny_config(role="teacher", **changes):
    from anycost.gan_compression import RunConfig

    arch = I2IArch.resnet(4, n_blocks=3, image_size=32, step=4, separable=role != "teacher")
    fields = dict(role=role, task=TASK, generator=arch, steps=4, batch=2, ndf=4, d_layers=1, sample_every=100,
                  checkpoint_every=2)
    return RunConfig(**{**fields, **changes})


def student_config(teacher_dir, role="distill", **changes):
    from anycost.gan_compression import load_teacher

    teacher, _, _ = load_teacher(teacher_dir)
    return tiny_config(role, teacher=str(teacher_dir), teacher_arch=teacher.arch, **changes)


def run_cli(*argv) -> int:
    """`anycost gan-compression ARGV...` in this process; its exit status."""
    return main(["gan-compression", *map(str, argv)])


def error_of(capsys, *argv) -> str:
    """The one-line error of a command that must fail."""
    assert run_cli(*argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def tiny_unpaired_config(role="cyclegan", teacher_dir=None, **changes):
    """A tiny run on the unpaired emoji task (64 px, ngf 4, 3 blocks, 4 steps of one A and one B image): a CycleGAN
    teacher, or (with `teacher_dir`) a separable student distilled from it with pseudo pairs."""
    from anycost.gan_compression import RunConfig, load_teacher

    arch = I2IArch.resnet(4, n_blocks=3, image_size=64, step=4, separable=role != "cyclegan")
    fields = dict(role=role, generator=arch, steps=4, ndf=4, d_layers=1, sample_every=100, checkpoint_every=2)
    if teacher_dir is not None:
        fields.update(teacher=str(teacher_dir), teacher_arch=load_teacher(teacher_dir)[0].arch, recon_target="teacher")
    return RunConfig.for_task(UNPAIRED, **{**fields, **changes})

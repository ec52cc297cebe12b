"""Shared fixtures: tiny architectures whose uniform ratios really slice channels at every scale; no test follows
the developer's own tuning table."""

import pytest
import torch

from anycost.models.stylegan2 import GeneratorArch
from anycost.ops import tuning

#: 32 px, widths 64/64/64/64 capped, ratio 0.25 gives 64/64/32/16: slicing shows at 16 and 32 px.
TINY = dict(channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)


@pytest.fixture(scope="session", autouse=True)
def no_user_tuning_table(tmp_path_factory):
    """The tuning table file is an absent one in a temporary folder, so impl='auto' follows its fixed rule in every
    test (not the table `anycost tune` built on this machine) unless a test writes a table there."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(tuning.ENV, str(tmp_path_factory.mktemp("tuning") / "tuning.json"))
        tuning.reload()
        yield
    tuning.reload()


@pytest.fixture
def tiny_arch():
    return GeneratorArch(32, **TINY)


@pytest.fixture
def tiny_generator(tiny_arch):
    from anycost.models.stylegan2 import Generator

    torch.manual_seed(0)
    return Generator(arch=tiny_arch).eval()


@pytest.fixture(scope="session")
def emoji_font():
    """The Noto Color Emoji font file; skips the test without it or without the `emoji` package."""
    pytest.importorskip("emoji", reason="the emoji package is not installed: pip install emoji")
    from anycost.data.emoji import find_font

    try:
        return find_font()
    except FileNotFoundError:
        pytest.skip("NotoColorEmoji.ttf absent: apt-get install fonts-noto-color-emoji")

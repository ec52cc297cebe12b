"""Shared fixtures: tiny architectures whose uniform ratios really slice channels at every scale."""

import pytest
import torch

from anycost.models.stylegan2 import GeneratorArch

#: 32 px, widths 64/64/64/64 capped, ratio 0.25 gives 64/64/32/16: slicing shows at 16 and 32 px.
TINY = dict(channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)


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

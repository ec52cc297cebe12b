"""MACs and parameters of the ResNet image-to-image generator: the GAN Compression paper's figures, a hand count,
and the counts against the network that really runs."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, conv_specs, export

#: The paper's generator (ngf 64, 9 blocks) and its 16-ngf uniform shrink, at 256 px.
PAPER = I2IArch.resnet(64)


@pytest.mark.parametrize(("ngf", "separable", "paper_g", "params_m"), [
    (64, False, "56.8", "11.378"),  # Table 1 "original"; Table 4 61.75 / 56.8G / 11.38M
    (64, True, "18.31", "1.987"),  # Table 4 "resblocks" decomposed: 18.3G / 1.98M (1.987 M unrounded)
    (32, False, "14.51", "2.85"),  # Table 7 ResNet 14.5G / 2.85M
    (16, True, "1.41", "0.137"),  # Table 4 ngf 16 "resblocks": 1.4G / 0.14M
])
def test_the_papers_macs_and_params(ngf, separable, paper_g, params_m):
    """The paper's profiler (torchprofile) counts a conv as output positions x c_in / groups x k^2 x c_out and a
    transposed conv the same way, at its output size; instance norms without affine parameters, ReLU, tanh,
    padding and the skip adds count nothing. Parameters are weights plus biases (the convs keep their bias because
    the norms are instance norms). The figures match to every printed digit."""
    c = I2IConfig.full(I2IArch.resnet(ngf, separable=separable))
    assert f"{c.paper_macs / 1e9:.{len(paper_g.split('.')[1])}f}" == paper_g
    assert f"{c.params / 1e6:.{len(params_m.split('.')[1])}f}" == params_m


def test_the_headline_models_exactly():
    """The exact integers behind 56.8 G / 11.378 M and 18.31 G / 1.987 M, and the true count of the original model
    (its transposed convs at their input size: 4x fewer MACs there, 49.55 G in all)."""
    full = I2IConfig.full(PAPER)
    assert (full.paper_macs, full.params) == (56_799_264_768, 11_378_179)
    assert full.macs == 49_551_507_456
    paper_up = 128 * 128 * 256 * 128 * 9 + 256 * 256 * 128 * 64 * 9  # the two transposed convs at their output size
    assert full.paper_macs - full.macs == paper_up - paper_up // 4
    mobile = I2IConfig.full(I2IArch.resnet(64, separable=True))
    assert (mobile.paper_macs, mobile.params) == (18_314_428_416, 1_987_075)


def test_uniform_shrinking_to_a_quarter():
    """Uniform 0.25x of ngf 64 (ngf 16 in every layer): 3.78 G, 15.0x fewer than 56.8 G (the paper prints 14.9x)."""
    c = I2IConfig.uniform(PAPER, 0.25)
    assert c.widths == (16, 32, 64, *(64,) * 9, 32, 16)
    assert f"{c.paper_macs / 1e9:.2f}" == "3.78"
    assert f"{I2IConfig.full(PAPER).paper_macs / c.paper_macs:.1f}" == "15.0"


def test_table1_compressed_figures_are_not_reproducible():
    """Table 1's compressed models (4.81 G / 0.70 M edges->shoes, 2.67 G / 0.34 M horse->zebra) are sub-networks
    whose widths the paper does not print, so no test can rebuild them; this only checks that any sub-network's
    counts sit between the smallest and the full one's (the search's budget range)."""
    arch = I2IArch.resnet(48, separable=True)
    smallest = I2IConfig(arch, (arch.step,) * len(arch.widths))
    middle = I2IConfig.uniform(arch, 0.5)
    full = I2IConfig.full(arch)
    assert smallest.paper_macs < middle.paper_macs < full.paper_macs
    assert smallest.params < middle.params < full.params


def test_a_sub_network_by_hand():
    """Every conv of a tiny separable sub-network at 8 px, written out."""
    arch = I2IArch.resnet(4, n_blocks=2, separable=True, image_size=8, step=2)
    assert arch.widths == (4, 8, 16, 16, 16, 8, 4)
    c = I2IConfig(arch, (2, 4, 6, 4, 8, 6, 2))
    convs = (
        64 * 2 * 3 * 49  # stem 3 -> 2, 7x7 at 8 px
        + 16 * 4 * 2 * 9  # down1 2 -> 4 at 4 px
        + 4 * 6 * 4 * 9  # down2 4 -> 6 (the trunk) at 2 px
        + 4 * 6 * 9 + 4 * 4 * 6 + 4 * 4 * 9 + 4 * 6 * 4  # block0: dw 6, pw 6 -> 4, dw 4, pw 4 -> 6
        + 4 * 6 * 9 + 4 * 8 * 6 + 4 * 8 * 9 + 4 * 6 * 8  # block1: dw 6, pw 6 -> 8, dw 8, pw 8 -> 6
        + 64 * 3 * 2 * 49  # head 2 -> 3 at 8 px
    )
    up_true = 4 * 6 * 6 * 9 + 16 * 6 * 2 * 9  # up1 6 -> 6 at its 2 px input, up2 6 -> 2 at its 4 px input
    up_paper = 16 * 6 * 6 * 9 + 64 * 6 * 2 * 9  # the same at their 4 px and 8 px outputs
    assert c.macs == convs + up_true
    assert c.paper_macs == convs + up_paper
    biases = 2 + 4 + 6 + (6 + 4 + 4 + 6) + (6 + 8 + 8 + 6) + 6 + 2 + 3
    weights = 2 * 3 * 49 + 4 * 2 * 9 + 6 * 4 * 9 + (6 * 9 + 6 * 4 + 4 * 9 + 4 * 6) + (6 * 9 + 6 * 8 + 8 * 9 + 8 * 6)
    weights += 6 * 6 * 9 + 6 * 2 * 9 + 2 * 3 * 49
    assert c.params == weights + biases


def _flop_counted_macs(G: I2IGenerator, config: I2IConfig | None, size: int) -> int:
    """MACs of one forward as torch's own FlopCounterMode counts them (2 FLOPs per MAC; it counts a transposed
    conv at its input size, our true convention)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        G(torch.zeros(1, G.arch.in_channels, size, size), config=config)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("separable", [False, True])
def test_true_macs_are_what_runs_in_the_supernet_and_in_the_export(separable):
    torch.manual_seed(0)
    arch = I2IArch.resnet(8, n_blocks=3, separable=separable, image_size=16, step=4)
    G = I2IGenerator(arch)
    config = I2IConfig(arch, (4, 12, 20, 8, 32, 16, 12, 4))
    assert _flop_counted_macs(G, config, 16) == config.macs
    assert _flop_counted_macs(G, None, 16) == I2IConfig.full(arch).macs
    small = export(G, config)
    assert _flop_counted_macs(small, None, 16) == I2IConfig.full(small.arch).macs == config.macs
    assert sum(p.numel() for p in small.parameters()) == config.params


@pytest.mark.parametrize("separable", [False, True])
def test_every_spec_names_a_module_of_its_shape(separable):
    arch = I2IArch.resnet(8, n_blocks=2, separable=separable, image_size=16, step=4)
    G = I2IGenerator(arch)
    specs = conv_specs(arch, arch.widths)
    weights = {name.removesuffix(".weight") for name, _ in G.named_parameters() if name.endswith(".weight")}
    assert [s.name for s in specs] == [n for n, m in G.named_modules() if n in weights]
    for s in specs:
        module = G.get_submodule(s.name)
        assert module.weight.numel() + module.bias.numel() == s.params, s.name
    assert conv_specs(arch, arch.widths, 32)[0].size_out == 32  # another input size


def test_a_bad_size_for_the_counts():
    with pytest.raises(ValueError, match="multiple of 4"):
        conv_specs(PAPER, PAPER.widths, 30)

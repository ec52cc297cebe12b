"""The SlimGAN paper's parameter table (Table 5, millions with M = 2^20) for Mimicry's SNGAN-32 ResNet
generator (ngf 256), reproduced exactly from our modules' parameters (running statistics are buffers and
do not count).

"Individual" models are separate generators of 64/128/192/256 channels with a plain (naive) conditional BN;
"slimmable" ones hold the four widths: "+" our sliceable cBN (N + C parameter sets), "x" a conditional BN
per width (N x C)."""

import pytest
import torch

from anycost.models.slimgan import SlimArch, build_generator

M = 2**20
WIDTHS = (0.25, 0.5, 0.75, 1.0)

#: Table 5: individual widths a/b/c/d and their total, per number of classes (0 = unconditional).
INDIVIDUAL = {0: ((0.35, 1.15, 2.39, 4.08), 7.97),
              10: ((0.36, 1.16, 2.41, 4.10), 8.04),
              100: ((0.42, 1.29, 2.61, 4.37), 8.70)}
#: Table 5: one slimmable generator: unconditional, and "+" (sliceable) / "x" (switchable) conditional BN.
SLIMMABLE = {(0, "sliceable"): 4.08,
             (10, "sliceable"): 4.11, (100, "sliceable"): 4.38,
             (10, "switchable"): 4.15, (100, "switchable"): 4.81}


def n_params(arch: SlimArch) -> int:
    with torch.device("meta"):  # shapes only, nothing allocated
        G = build_generator(arch)
    return sum(p.numel() for p in G.parameters())


@pytest.mark.parametrize("num_classes", sorted(INDIVIDUAL))
def test_individual_generators(num_classes):
    counts = [n_params(SlimArch.resnet32(round(256 * w), widths=(1.0,), num_classes=num_classes, cbn="switchable"))
              for w in WIDTHS]
    each, total = INDIVIDUAL[num_classes]
    assert tuple(round(n / M, 2) for n in counts) == each
    assert round(sum(counts) / M, 2) == total


@pytest.mark.parametrize("num_classes, cbn", sorted(SLIMMABLE))
def test_slimmable_generator(num_classes, cbn):
    assert round(n_params(SlimArch.resnet32(num_classes=num_classes, cbn=cbn)) / M, 2) == SLIMMABLE[num_classes, cbn]


def test_exact_counts_follow_the_formulas():
    """The exact numbers behind the rounded ones: the unconditional full-width model (4,276,739 as Mimicry's
    SNGAN-32), plus 2 x 7 BNs x (64 + 128 + 192) affines for the narrower widths, plus one class table of
    6 BNs x C x 2 x 256 for "+", or 6 BNs x C x 2 x 640 tables (no per-width affine) for "x"."""
    single = n_params(SlimArch.resnet32(widths=(1.0,)))
    assert single == 4_276_739
    slim = n_params(SlimArch.resnet32())
    assert slim == single + 2 * 7 * (64 + 128 + 192)
    assert n_params(SlimArch.resnet32(num_classes=10)) == slim + 6 * 10 * 2 * 256
    assert n_params(SlimArch.resnet32(num_classes=10, cbn="switchable")) == slim - 2 * 6 * 640 + 6 * 10 * 2 * 640

"""The multi-resolution, generator-conditioned discriminator."""

import pytest
import torch

from anycost.models.stylegan2 import Discriminator, SubnetConfig, arch_vector


@pytest.fixture
def D(tiny_arch):
    torch.manual_seed(0)
    return Discriminator(tiny_arch)


def test_scores_every_resolution_through_its_read_off(D, tiny_arch):
    for r in tiny_arch.resolutions:
        x = torch.randn(3, 3, r, r)
        assert D(x).shape == (3, 1)
    with pytest.raises(ValueError, match="not in this discriminator"):
        D(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\[N, 3, r, r\]"):
        D(torch.randn(1, 1, 8, 8))


def test_arch_vector_is_one_hot_per_layer(tiny_arch):
    n = tiny_arch.n_styles
    quarter = arch_vector(SubnetConfig.uniform(tiny_arch, 0.25)).reshape(n, 4)
    assert (quarter.sum(1) == 1).all()
    # capped layers (same widths at every ratio) map to the largest ratio that gives them
    for i, width in enumerate(SubnetConfig.uniform(tiny_arch, 0.25).widths):
        expected = 3 if width == tiny_arch.full_widths[i] else 0
        assert quarter[i].argmax() == expected
    low = arch_vector(SubnetConfig.full(tiny_arch, 8)).reshape(n, 4)
    assert low[:4].sum() == 4 and low[4:].sum() == 0  # layers above 8 px (4 at 8 px) stay zero


def test_conditioning_starts_neutral_then_changes_the_score(D, tiny_arch):
    x = torch.randn(2, 3, 32, 32)
    configs = [SubnetConfig.uniform(tiny_arch, 0.25), SubnetConfig.full(tiny_arch)]
    vec = D.arch_vector(configs)
    torch.testing.assert_close(D(x, vec), D(x))  # zero-initialised embedding: a stage-2 D is unchanged
    with torch.no_grad():
        D.arch_embed.weight.normal_()
    out = D(x, vec)
    assert not torch.allclose(out, D(x))
    assert not torch.allclose(D(x[:1], vec[:1]), D(x[:1], vec[1:]))  # depends on the architecture vector
    with pytest.raises(ValueError, match="arch must be"):
        D(x, vec[:1])


def test_r1_double_backward_through_the_discriminator(D):
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    g.square().sum().backward()
    assert D.from_rgbs["16"].weight.grad is not None

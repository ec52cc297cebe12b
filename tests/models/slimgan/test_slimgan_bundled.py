"""The bundled SlimGAN (`anycost/assets/slimgan_fmnist32.safetensors`): loads by its file's family through
`anycost.load_generator`, serves every width and class, and refuses bad widths and classes."""

import pytest
import torch

import anycost
from anycost import assets
from anycost.models.slimgan import SlimGenerator


@pytest.fixture(scope="module")
def G():
    return anycost.load_generator(assets.path("slimgan_fmnist32.safetensors"))


@torch.no_grad()
def test_every_width_and_class_renders(G):
    assert isinstance(G, SlimGenerator) and not G.training
    assert G.widths == (0.25, 0.5, 0.75, 1.0) and G.num_classes == 10 and G.z_dim == 128
    z, y = torch.randn(10, G.z_dim, generator=torch.Generator().manual_seed(0)), torch.arange(10)
    outs = [G(z, y, width=w) for w in G.widths]
    for out in outs:
        assert out.shape == (10, 1, 32, 32) and out.abs().max() <= 1 and out.std() > 0.1
    # the widths render the same latents alike: closer to each other than to another latent's image
    same = (outs[0] - outs[-1]).abs().mean()
    other = (outs[-1] - outs[-1].roll(1, 0)).abs().mean()
    assert same < other


def test_bad_width_and_class(G):
    z = torch.randn(2, G.z_dim)
    with pytest.raises(ValueError, match="width"):
        G(z, torch.tensor([0, 1]), width=0.3)
    with pytest.raises(ValueError, match="class"):
        G(z, torch.tensor([0, 10]), width=0.5)
    with pytest.raises(ValueError, match="class"):
        G(z, None, width=0.5)

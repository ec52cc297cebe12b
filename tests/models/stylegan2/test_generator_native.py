"""End to end: the generator with native kernels against the same generator on the reference ops."""

import copy

import pytest
import torch

from anycost import Generator, ops
from anycost.models.stylegan2 import UNIFORM_RATIOS

pytestmark = pytest.mark.skipif(not ops.NATIVE, reason="native ops unavailable")


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    G = Generator(64, channel_multiplier=1, channel_max=128, style_dim=64, n_mlp=2).eval()
    with torch.no_grad():
        for layer in (G.conv1, *G.convs):
            layer.noise.weight.fill_(0.3)
            layer.activate.bias.normal_()
    return G


@pytest.mark.parametrize("ratio", UNIFORM_RATIOS)
@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_every_uniform_config_matches_the_reference(generator, resolution, ratio):
    G = generator
    w = G.mapping(torch.randn(2, 64, generator=torch.Generator().manual_seed(1)))
    config = G.subnet(resolution=resolution, ratio=ratio)
    with torch.no_grad():
        ours = G(w, config=config, noise="const", impl="kernel")
        theirs = G(w, config=config, noise="const", impl="ref")
    assert theirs.abs().max() > 1
    assert (ours - theirs).abs().max() < 1e-3


def test_native_forward_follows_loaded_weights(generator):
    # The native forward keeps each conv's Winograd weight transforms between calls (kernels/cpu/
    # wino_weight_cache.h): loading other weights into the same parameters must give their output.
    G = copy.deepcopy(generator)
    torch.manual_seed(3)
    other = Generator(64, channel_multiplier=1, channel_max=128, style_dim=64, n_mlp=2).eval()
    w = G.mapping(torch.randn(1, 64, generator=torch.Generator().manual_seed(2)))
    config = G.subnet(resolution=64, ratio=1.0)
    with torch.no_grad():
        before = G(w, config=config, noise="const", impl="kernel")
        G.load_state_dict(other.state_dict())
        ours = G(w, config=config, noise="const", impl="kernel")
        theirs = G(w, config=config, noise="const", impl="ref")
    assert (ours - theirs).abs().max() < 1e-3
    assert (ours - before).abs().max() > 0.1


def test_kernel_path_trains_like_the_reference(generator):
    G = generator
    w = G.mapping(torch.randn(1, 64))
    grads = {}
    for impl in ("kernel", "ref"):
        G.zero_grad()
        G(w.detach(), config=G.subnet(ratio=0.5), noise="const", impl=impl).square().mean().backward()
        grads[impl] = G.convs[2].conv.weight.grad.clone()
    # the loss depends on the forward output, which differs by fp32 rounding: compare at the gradient's scale
    scale = grads["ref"].abs().max().item()
    torch.testing.assert_close(grads["kernel"], grads["ref"], atol=1e-3 * scale, rtol=1e-3)


def test_mapping_with_native_bias_act_matches_the_reference(generator):
    G = generator
    z = torch.randn(5, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(z, impl="kernel"), G.mapping(z, impl="ref"))
        torch.testing.assert_close(G.mapping(z, impl="auto"), G.mapping(z))

"""The generator against the independent official forward (`anycost.models.stylegan2.official`)."""

import pytest
import torch

from anycost.models.stylegan2 import UNIFORM_RATIOS, SubnetConfig
from anycost.models.stylegan2.checkpoints import generator_from_official_state
from anycost.models.stylegan2.official import (
    official_forward,
    official_mapping,
    official_uniform_widths,
    random_official_state_dict,
)

TINY = dict(channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)


def _pair(resolution, dtype=torch.float64, seed=0, **arch):
    sd = random_official_state_dict(resolution, seed=seed, dtype=dtype, **arch)
    G = generator_from_official_state(sd).to(dtype)
    return sd, G


def _assert_close_to_output_scale(ours, theirs):
    scale = theirs.abs().max()
    assert scale > 1.5, "the test model should produce outputs well outside [-1, 1]"
    assert (ours - theirs).abs().max() <= 1e-3 * scale


@pytest.fixture(scope="module")
def tiny64():
    return _pair(64, **TINY)


@pytest.mark.parametrize("ratio", UNIFORM_RATIOS)
@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
def test_every_uniform_config_and_resolution_matches(tiny64, ratio, resolution):
    sd, G = tiny64
    rng = torch.Generator().manual_seed(1)
    wplus = torch.randn(2, G.arch.n_styles, G.arch.style_dim, dtype=torch.float64, generator=rng)
    config = G.subnet(resolution=resolution, ratio=ratio)
    expected = official_uniform_widths(resolution, ratio, TINY["channel_multiplier"], TINY["channel_max"])
    assert list(config.widths) == expected
    ours = G(wplus, config=config, noise="const")
    theirs = official_forward(sd, wplus, "const", widths=list(config.widths), resolution=resolution)
    assert ours.shape == (2, 3, resolution, resolution)
    _assert_close_to_output_scale(ours, theirs)


def test_flexible_configs_match(tiny64):
    sd, G = tiny64
    rng = torch.Generator().manual_seed(3)
    wplus = torch.randn(3, G.arch.n_styles, G.arch.style_dim, dtype=torch.float64, generator=rng)
    for _ in range(4):
        widths = [int(torch.randint(1, full + 1, (1,), generator=rng)) for full in G.arch.full_widths]
        config = SubnetConfig.flexible(G.arch, widths)
        _assert_close_to_output_scale(G(wplus, config=config, noise="const"),
                                      official_forward(sd, wplus, "const", widths=widths))


def test_mapping_and_return_rgbs_match(tiny64):
    sd, G = tiny64
    z = torch.randn(4, G.arch.style_dim, dtype=torch.float64)
    torch.testing.assert_close(G.mapping(z), official_mapping(sd, z))
    wplus = G.mapping(z).unsqueeze(1).repeat(1, G.arch.n_styles, 1)
    config = G.subnet(ratio=0.25)
    img, rgbs = G(wplus, config=config, noise="const", return_rgbs=True)
    ref_img, ref_rgbs = official_forward(sd, wplus, "const", widths=list(config.widths), return_rgbs=True)
    assert len(rgbs) == len(ref_rgbs) == 5 and rgbs[-1] is img
    for ours, theirs in zip(rgbs, ref_rgbs):
        _assert_close_to_output_scale(ours, theirs)


def test_user_noise_matches(tiny64):
    sd, G = tiny64
    noise = G.make_noise(2, rng=torch.Generator().manual_seed(5))
    wplus = torch.randn(2, G.arch.n_styles, G.arch.style_dim, dtype=torch.float64)
    _assert_close_to_output_scale(G(wplus, noise=noise), official_forward(sd, wplus, noise))


def test_float32_config_f_shapes_match():
    """Real config-f widths (512 capped) at 64 px in float32: the fp32 tolerance of the issue."""
    sd, G = _pair(64, dtype=torch.float32, seed=2, style_dim=64, n_mlp=2)
    wplus = torch.randn(1, G.arch.n_styles, 64)
    for ratio in UNIFORM_RATIOS:
        config = G.subnet(ratio=ratio)
        with torch.no_grad():
            _assert_close_to_output_scale(
                G(wplus, config=config, noise="const"),
                official_forward(sd, wplus, "const", widths=list(config.widths)),
            )

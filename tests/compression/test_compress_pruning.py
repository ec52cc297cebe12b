"""Magnitude and channel pruning on the tiny generator: exact counts, untouched input, valid sub-generators."""

import copy

import pytest
import torch

from anycost import sort_channels
from anycost.compression import config_for, prune, prune_channels
from anycost.compression.generator import compressible_keys
from anycost.compression.pruning import prunable_weights

#: Channel-pruned vs sliced full model: the same effective weights, rescaled once (float rounding only).
TOL = dict(atol=1e-5, rtol=1e-4)


def _w(G, n=2, seed=0):
    return G.mapping(torch.randn(n, G.arch.style_dim, generator=torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.8, 0.95])
def test_global_pruning_zeroes_exactly_the_fraction_asked_and_the_smallest(tiny_generator, sparsity):
    before = copy.deepcopy(tiny_generator.state_dict())
    Gp = prune(tiny_generator, sparsity, "global")
    keys = compressible_keys(tiny_generator)
    pruned = torch.cat([Gp.state_dict()[k].reshape(-1) for k in keys])
    original = torch.cat([before[k].reshape(-1) for k in keys])
    zero = pruned == 0
    assert int(zero.sum()) == round(sparsity * original.numel())
    assert original.abs()[zero].max() <= original.abs()[~zero].min()  # the smallest magnitudes went
    assert torch.equal(pruned[~zero], original[~zero])
    for key, value in tiny_generator.state_dict().items():  # the input is untouched
        assert torch.equal(value, before[key])
    for key in set(before) - set(keys):  # only the 3x3 conv weights change
        assert torch.equal(Gp.state_dict()[key], before[key])


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.95])
def test_layer_pruning_zeroes_the_fraction_in_every_layer(tiny_generator, sparsity):
    Gp = prune(tiny_generator, sparsity, "layer")
    for key in compressible_keys(tiny_generator):
        weight = Gp.state_dict()[key]
        assert int((weight == 0).sum()) == round(sparsity * weight.numel()), key
    assert Gp.encodings == {k: {"kind": "sparse"} for k in compressible_keys(tiny_generator)}
    assert Gp.steps == [{"method": "prune", "sparsity": sparsity, "scope": "layer", "weights": "convs"}]


def test_pruning_all_weights_ranks_every_weight_matrix_on_one_scale(tiny_generator):
    G = tiny_generator
    factors = prunable_weights(G, "all")
    assert set(compressible_keys(G)) < set(factors) and "style.1.weight" in factors and "to_rgb1.conv.weight" in factors
    assert "conv1.conv.modulation.weight" in factors and factors["style.1.weight"] == G.arch.lr_mlp != 1
    assert all(G.state_dict()[k].ndim >= 2 for k in factors)
    Gp = prune(G, 0.5, "global", "all")
    before, after = G.state_dict(), Gp.state_dict()
    scaled = torch.cat([before[k].reshape(-1).abs() * f for k, f in factors.items()])
    zero = torch.cat([after[k].reshape(-1) == 0 for k in factors])
    assert int(zero.sum()) == round(0.5 * scaled.numel())
    assert scaled[zero].max() <= scaled[~zero].min()  # the smallest on the common scale went
    # The mapping stores its weights x 1 / lr_mul (100x here): ranked on the stored values it would keep them all.
    mapping = after["style.1.weight"]
    assert 0 < int((mapping == 0).sum()) < mapping.numel()
    for key in set(before) - set(factors):  # biases, noise strengths, the constant input, the noise stay
        assert torch.equal(after[key], before[key]), key
    assert Gp.encodings == {k: {"kind": "sparse"} for k in factors}
    assert Gp.steps == [{"method": "prune", "sparsity": 0.5, "scope": "global", "weights": "all"}]
    layer = prune(G, 0.3, "layer", "all").state_dict()
    for key in factors:
        assert int((layer[key] == 0).sum()) == round(0.3 * layer[key].numel()), key


def test_every_sub_generator_of_a_pruned_model_runs(tiny_generator):
    Gp = prune(tiny_generator, 0.5)
    w = _w(tiny_generator)
    for config in (tiny_generator.subnet(8, 0.25), tiny_generator.subnet(16, 0.5), tiny_generator.full_config):
        out = Gp(w, config=config, noise="const")
        assert out.shape == (2, 3, config.resolution, config.resolution) and torch.isfinite(out).all()


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, True, "0.5"])
def test_bad_sparsity_is_one_line_naming_it(tiny_generator, bad):
    with pytest.raises(ValueError, match=f"sparsity must be in \\[0, 1\\), got {bad!r}"):
        prune(tiny_generator, bad)


def test_bad_scope_and_bad_generator(tiny_generator):
    with pytest.raises(ValueError, match="scope must be one of"):
        prune(tiny_generator, 0.5, "row")
    with pytest.raises(ValueError, match="weights must be one of \\('convs', 'all'\\), got 'biases'"):
        prune(tiny_generator, 0.5, "global", "biases")
    with pytest.raises(TypeError, match="expected an anycost StyleGAN2 Generator"):
        prune(torch.nn.Linear(2, 2), 0.5)


def test_sparse_or_quantised_weights_are_not_compressed_again(tiny_generator):
    with pytest.raises(ValueError, match="already compressed \\(prune\\)"):
        prune(prune(tiny_generator, 0.5), 0.5)
    both = prune(prune_channels(tiny_generator, 0.5), 0.5)  # channel pruning then another method is fine
    assert [s["method"] for s in both.steps] == ["channels", "prune"]


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.75])
def test_channel_pruning_computes_the_sub_generator_of_its_widths(tiny_generator, keep):
    G = tiny_generator
    Gc = prune_channels(G, keep)
    assert Gc.arch.full_widths == G.subnet(ratio=keep).widths
    assert sum(p.numel() for p in Gc.parameters()) < sum(p.numel() for p in G.parameters())
    w = _w(G)
    torch.testing.assert_close(Gc(w, noise="const"), G(w, config=G.subnet(ratio=keep), noise="const"), **TOL)
    smaller = G.subnet(16, 0.25)  # every smaller sub-generator of G is one of Gc's, with the same output
    torch.testing.assert_close(Gc(w, config=config_for(Gc, smaller), noise="const"),
                               G(w, config=smaller, noise="const"), **TOL)


def test_channel_pruning_can_sort_first_and_leaves_the_input_alone(tiny_generator):
    before = copy.deepcopy(tiny_generator.state_dict())
    Gc = prune_channels(tiny_generator, 0.5, sort=True)
    for key, value in tiny_generator.state_dict().items():
        assert torch.equal(value, before[key])
    sorted_G = sort_channels(copy.deepcopy(tiny_generator))
    w = _w(tiny_generator)
    torch.testing.assert_close(Gc(w, noise="const"), sorted_G(w, config=sorted_G.subnet(ratio=0.5), noise="const"),
                               **TOL)


@pytest.mark.parametrize("bad", [0, -0.5, 1.5, True])
def test_bad_keep_is_one_line_naming_it(tiny_generator, bad):
    with pytest.raises(ValueError, match=f"keep must be in \\(0, 1\\], got {bad!r}"):
        prune_channels(tiny_generator, bad)


def test_a_keep_that_leaves_no_channel_is_refused(tiny_generator):
    with pytest.raises(ValueError, match="keep=0.001 leaves a layer with no channel"):
        prune_channels(tiny_generator, 0.001)

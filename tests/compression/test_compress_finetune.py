"""The distillation fine-tune on the tiny generator: it keeps each method's structure (the pruning mask exactly,
at most 2**bits values per k-means layer, every sub-generator of a channel-pruned model), it changes the model
and leaves its inputs alone, and it refuses what it cannot tune.

On this random tiny generator a few steps do not reliably lower the distance (the bundled model's measured effect
is in bench/RESULTS.md), so these tests check that training happened, not that it helped."""

import copy

import pytest
import torch

from anycost import compression
from anycost.compression import finetune, kmeans_quantize, prune, prune_channels, quantize_int8
from anycost.compression.distill import teacher_config
from anycost.compression.generator import compressible_keys


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _state(G):
    return {k: v.clone() for k, v in G.state_dict().items()}


def test_pruned_weights_stay_zero_and_the_rest_trains(tiny_generator):
    Gp = prune(tiny_generator, 0.5)
    before, teacher = _state(Gp), _state(tiny_generator)
    Gf = finetune(Gp, tiny_generator, 3)
    for key in compressible_keys(Gp):
        mask, tuned = before[key] != 0, Gf.state_dict()[key]
        assert torch.equal(tuned != 0, mask), key  # the same zeros, position by position
        assert not torch.equal(tuned, before[key]), key  # the kept weights moved
    assert Gf.steps[-1] == {"method": "finetune", "steps": 3, "lr": 1e-3, "batch": 4, "seed": 1}
    assert Gf.encodings == Gp.encodings
    for key, value in Gp.state_dict().items():  # the inputs are untouched
        assert torch.equal(value, before[key]), key
    for key, value in tiny_generator.state_dict().items():
        assert torch.equal(value, teacher[key]), key
    for key, value in Gf.state_dict().items():  # the mapping stays the original's: w means the same to both
        if key.startswith("style."):
            assert torch.equal(value, teacher[key]), key


def test_a_pruned_mapping_is_fine_tuned_with_the_rest_and_keeps_its_zeros(tiny_generator):
    Gp = prune(tiny_generator, 0.5, weights="all")
    before = _state(Gp)
    Gf = finetune(Gp, tiny_generator, 2)
    for key in ("style.1.weight", "conv1.conv.modulation.weight", *compressible_keys(Gp)):
        tuned = Gf.state_dict()[key]
        assert torch.equal(tuned != 0, before[key] != 0), key
        assert not torch.equal(tuned, before[key]), key


def test_same_seed_same_model(tiny_generator):
    Gp = prune(tiny_generator, 0.5)
    a, b, c = (finetune(Gp, tiny_generator, 2, seed=s).state_dict() for s in (1, 1, 2))
    key = compressible_keys(Gp)[0]
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])


def test_kmeans_layers_keep_their_clusters(tiny_generator, tmp_path):
    Gk = kmeans_quantize(tiny_generator, 2)
    Gf = finetune(Gk, tiny_generator, 3)
    for key in compressible_keys(Gk):
        before, after = Gk.state_dict()[key].reshape(-1), Gf.state_dict()[key].reshape(-1)
        assert torch.unique(after).numel() <= 4
        assert not torch.equal(after, before)
        # weights that shared a value still share one: the assignments did not change
        _, clusters = torch.unique(before, return_inverse=True)
        for c in clusters.unique():
            assert torch.unique(after[clusters == c]).numel() == 1
    path = compression.save_generator(Gf, tmp_path / "k.safetensors")  # still encodes as 2-bit indices
    torch.testing.assert_close(compression.load_generator(path).state_dict(), Gf.state_dict(), rtol=0, atol=0)


def test_channel_pruned_model_keeps_every_sub_generator(tiny_generator):
    Gc = prune_channels(tiny_generator, 0.5)
    Gf = finetune(Gc, tiny_generator, 3)
    assert Gf.arch == Gc.arch
    w = tiny_generator.mapping(torch.randn(2, 32, generator=torch.Generator().manual_seed(3)))
    configs = [tiny_generator.subnet(res, ratio) for res in (8, 16, 32) for ratio in (0.25, 0.5, 0.75, 1.0)]
    configs.append(tiny_generator.subnet(channels=[64, 48, 16, 32, 8, 16, 16, 8]))
    with torch.no_grad():
        for config in configs:
            mine = compression.config_for(Gf, config)
            out = Gf(w, config=mine, noise="const")
            assert out.shape == (2, 3, config.resolution, config.resolution) and torch.isfinite(out).all()
        assert not torch.equal(Gf(w, noise="const"), Gc(w, noise="const"))


def test_teacher_config_lifts_the_cut_layers_to_full_width(tiny_generator):
    Gc = prune_channels(tiny_generator, 0.5)
    assert teacher_config(tiny_generator, Gc, Gc.full_config) == tiny_generator.full_config
    cheap = compression.config_for(Gc, tiny_generator.subnet(16, 0.25))  # narrower than Gc: the same widths
    assert teacher_config(tiny_generator, Gc, cheap).widths == tiny_generator.subnet(16, 0.25).widths
    same = prune(tiny_generator, 0.5)
    config = tiny_generator.subnet(16, 0.5)
    assert teacher_config(tiny_generator, same, config) == config


def test_refuses_int8_and_bad_values(tiny_generator):
    w = tiny_generator.mapping(torch.randn(2, 32))
    with pytest.raises(ValueError, match="int8 generator cannot be fine-tuned"):
        finetune(quantize_int8(tiny_generator, w), tiny_generator, 1)
    with pytest.raises(TypeError, match="CompressedGenerator"):
        finetune(copy.deepcopy(tiny_generator), tiny_generator, 1)
    Gp = prune(tiny_generator, 0.5)
    with pytest.raises(ValueError, match="steps must be an integer >= 0, got -1"):
        finetune(Gp, tiny_generator, -1)
    with pytest.raises(ValueError, match="learning rate must be a positive number, got 0"):
        finetune(Gp, tiny_generator, 1, lr=0)

"""k-means weight sharing: lossless when the codebook can hold every value, codebook sizes, bit packing."""

import pytest
import torch

from anycost.compression import kmeans_1d, kmeans_quantize
from anycost.compression.bitpack import pack_bits, packed_size, unpack_bits
from anycost.compression.generator import compressible_keys


@pytest.mark.parametrize("bits", [1, 3, 4])
def test_kmeans_is_lossless_when_2_to_the_bits_covers_the_distinct_values(tiny_generator, bits):
    rng = torch.Generator().manual_seed(bits)
    with torch.no_grad():
        for key in compressible_keys(tiny_generator):
            weight = tiny_generator.get_parameter(key)
            levels = torch.randn(2**bits, generator=rng)
            weight.copy_(levels[torch.randint(0, 2**bits, weight.shape, generator=rng)])
    Gk = kmeans_quantize(tiny_generator, bits)
    for key, value in tiny_generator.state_dict().items():
        assert torch.equal(Gk.state_dict()[key], value), key


@pytest.mark.parametrize("bits", range(1, 9))
def test_every_layer_uses_at_most_2_to_the_bits_values(tiny_generator, bits):
    Gk = kmeans_quantize(tiny_generator, bits)
    for key in compressible_keys(tiny_generator):
        assert 1 <= torch.unique(Gk.state_dict()[key]).numel() <= 2**bits
        assert Gk.encodings[key] == {"kind": "kmeans", "bits": bits}


def test_kmeans_1d_is_a_lloyd_fixed_point_and_beats_its_start():
    values = torch.randn(20000, generator=torch.Generator().manual_seed(0))
    codebook, indices = kmeans_1d(values, 16, iters=200)
    assert codebook.numel() == 16 and torch.all(codebook[1:] > codebook[:-1])
    for j in range(16):  # every centroid is the mean of its cluster
        torch.testing.assert_close(codebook[j], values[indices == j].mean(), atol=1e-5, rtol=0)
    grid = torch.linspace(values.min().item(), values.max().item(), 16)
    start_error = (values.unsqueeze(1) - grid).abs().min(1).values.square().mean()
    assert (codebook[indices] - values).square().mean() < 0.7 * start_error


def test_quantile_init_and_a_bad_init():
    values = torch.randn(5000, generator=torch.Generator().manual_seed(1))
    codebook, indices = kmeans_1d(values, 8, init="quantile")
    assert codebook.numel() <= 8 and int(indices.max()) < codebook.numel()
    with pytest.raises(ValueError, match="init must be one of"):
        kmeans_1d(values, 8, init="random")


@pytest.mark.parametrize("bad", [0, 9, 2.5, True, "4"])
def test_bad_bits_is_one_line_naming_it(tiny_generator, bad):
    with pytest.raises(ValueError, match=f"bits must be an integer in 1..8, got {bad!r}"):
        kmeans_quantize(tiny_generator, bad)


@pytest.mark.parametrize("bits", range(1, 9))
def test_bit_packing_round_trips_any_count(bits):
    values = torch.randint(0, 2**bits, (1001,), generator=torch.Generator().manual_seed(bits))
    packed = pack_bits(values, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_size(1001, bits)
    assert torch.equal(unpack_bits(packed, bits, 1001), values)
    with pytest.raises(ValueError, match="packed bytes"):
        unpack_bits(packed[:-1], bits, 1001)

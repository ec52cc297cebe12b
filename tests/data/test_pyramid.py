"""multires_batch (exact box averages) and random_flip (shared, deterministic)."""

import pytest
import torch

from anycost.data import multires_batch, random_flip


def test_hand_computed_4x4():
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    out = multires_batch(x, [4, 2, 1])
    assert out[4] is x
    # 2x2 blocks: (0+1+4+5)/4, (2+3+6+7)/4, (8+9+12+13)/4, (10+11+14+15)/4
    assert torch.equal(out[2], torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    assert torch.equal(out[1], torch.tensor([[[[7.5]]]]))
    assert list(out) == [4, 2, 1]


def test_exact_area_average_multichannel():
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    out = multires_batch(x, [2, 8])
    assert torch.allclose(out[2], x.reshape(2, 3, 2, 8, 2, 8).mean(dim=(3, 5)))
    assert out[8].shape == (2, 3, 8, 8)


def test_bad_resolutions():
    x = torch.zeros(1, 3, 8, 8)
    for bad in ([16], [3], [0]):
        with pytest.raises(ValueError, match="powers of two"):
            multires_batch(x, bad)
    with pytest.raises(ValueError):
        multires_batch(torch.zeros(1, 3, 8, 4), [4])


def test_flip_shared_across_resolutions():
    x = torch.randn(64, 3, 8, 8, dtype=torch.float64)
    flipped = random_flip(x, torch.Generator().manual_seed(1))
    was_flipped = torch.tensor([torch.equal(f, s.flip(-1)) for f, s in zip(flipped, x)])
    kept = torch.tensor([torch.equal(f, s) for f, s in zip(flipped, x)])
    assert torch.all(was_flipped ^ kept) and 10 < was_flipped.sum() < 54
    ref = multires_batch(x, [4, 2])
    out = multires_batch(flipped, [4, 2])
    for r in (4, 2):
        expected = torch.where(was_flipped[:, None, None, None], ref[r].flip(-1), ref[r])
        torch.testing.assert_close(out[r], expected)  # equal up to summation order


def test_flip_generator_determinism():
    x = torch.randn(32, 3, 4, 4)
    a = random_flip(x, torch.Generator().manual_seed(7))
    b = random_flip(x, torch.Generator().manual_seed(7))
    c = random_flip(x, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)

"""Quick self-tests of the independent official formulation (`anycost.models.stylegan2.official`), the tests' oracle."""

import math

import pytest
import torch
import torch.nn.functional as F

from anycost.models.stylegan2 import official as ref

SMALL = {"channel_multiplier": 2, "channel_max": 64, "style_dim": 32, "n_mlp": 2}


@pytest.fixture(scope="module")
def sd32():
    return ref.random_official_state_dict(32, seed=1, dtype=torch.float64, **SMALL)


def _wplus(sd, n=2, seed=3):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 32, generator=g, dtype=torch.float64)
    w = ref.official_mapping(sd, z)
    n_style = 2 * int(math.log2(ref.model_resolution(sd))) - 2
    return w.unsqueeze(1).repeat(1, n_style, 1) + 0.5 * torch.randn(n, n_style, 32, generator=g, dtype=w.dtype)


def test_state_dict_keys_and_shapes():
    sd = ref.random_official_state_dict(16, **SMALL)
    c = {4: 64, 8: 64, 16: 64}
    exp = {"style.1.weight": (32, 32), "style.1.bias": (32,), "style.2.weight": (32, 32), "style.2.bias": (32,)}
    exp["input.input"] = (1, c[4], 4, 4)

    def styled(p, ci, co, k, up=False, rgb=False):
        exp[f"{p}.conv.weight"] = (1, co, ci, k, k)
        exp[f"{p}.conv.modulation.weight"] = (ci, 32)
        exp[f"{p}.conv.modulation.bias"] = (ci,)
        if up:
            exp[f"{p}.conv.blur.kernel"] = (4, 4)
        if rgb:
            exp[f"{p}.bias"] = (1, 3, 1, 1)
        else:
            exp[f"{p}.noise.weight"] = (1,)
            exp[f"{p}.activate.bias"] = (co,)

    styled("conv1", c[4], c[4], 3)
    styled("to_rgb1", c[4], 3, 1, rgb=True)
    for k, (r0, r1) in enumerate([(4, 8), (8, 16)]):
        styled(f"convs.{2 * k}", c[r0], c[r1], 3, up=True)
        styled(f"convs.{2 * k + 1}", c[r1], c[r1], 3)
        exp[f"to_rgbs.{k}.upsample.kernel"] = (4, 4)
        styled(f"to_rgbs.{k}", c[r1], 3, 1, rgb=True)
    for i, r in enumerate([4, 8, 8, 16, 16]):
        exp[f"noises.noise_{i}"] = (1, 1, r, r)
    assert {k: tuple(v.shape) for k, v in sd.items()} == exp
    k4 = torch.tensor([[1, 3, 3, 1], [3, 9, 9, 3], [3, 9, 9, 3], [1, 3, 3, 1]], dtype=torch.float32) / 16
    assert torch.equal(sd["convs.0.conv.blur.kernel"], k4) and torch.equal(sd["to_rgbs.1.upsample.kernel"], k4)
    assert ref.model_resolution(sd) == 16
    for key in ("conv1.noise.weight", "conv1.activate.bias", "to_rgb1.bias", "style.1.bias"):
        assert sd[key].abs().min() > 0
    # Full-size channel counts (config-f).
    full = ref.random_official_state_dict(64, style_dim=8, n_mlp=1)
    assert full["convs.6.conv.weight"].shape == (1, 512, 512, 3, 3)
    assert ref.official_channels(128) == 256 and ref.official_channels(1024) == 32
    assert ref.official_channels(64, channel_multiplier=1) == 256


def test_uniform_widths():
    exp = [512] * 6 + [256, 256, 128, 128, 64, 64, 32, 32, 16, 16, 8, 8]
    assert ref.official_uniform_widths(1024, 0.25) == exp
    full = ref.official_uniform_widths(1024, 1.0)
    assert len(full) == 18 and full[:10] == [512] * 10 and full[10:] == [256, 256, 128, 128, 64, 64, 32, 32]
    half_e = ref.official_uniform_widths(256, 0.5, channel_multiplier=1)
    assert half_e == [512] * 6 + [256, 256, 128, 128, 64, 64, 32, 32]


def test_upfirdn2d_hand_checked():
    k = torch.arange(1.0, 17.0, dtype=torch.float64).view(4, 4)  # asymmetric: checks a TRUE convolution
    delta = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    assert torch.equal(ref.upfirdn2d(delta, k, pad=(3, 3))[0, 0], k)
    # Upsample of a single sample: 2x2 output, each k4*4 centre tap = 9/64 * 4 = 0.5625.
    up = ref.upfirdn2d(delta, ref.blur_kernel(torch.float64), up=2, pad=(2, 1))
    assert torch.equal(up, torch.full((1, 1, 2, 2), 0.5625, dtype=torch.float64))
    # A constant image stays constant in the interior after the x2 upsample (each polyphase sums to 1).
    const = ref.upfirdn2d(torch.full((1, 2, 5, 5), 3.0), ref.blur_kernel(), up=2, pad=(2, 1))
    assert const.shape == (1, 2, 10, 10) and torch.allclose(const[..., 2:-2, 2:-2], torch.tensor(3.0))


def test_conv_transpose_matches_zero_insertion():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 5, 5, generator=g, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)  # (out, in, k, k)
    a = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
    z = torch.zeros(1, 3, 10, 10, dtype=torch.float64)
    z[..., ::2, ::2] = x
    b = F.conv2d(F.pad(z, (2, 1, 2, 1)), torch.flip(w, [2, 3]))
    assert a.shape == (1, 4, 11, 11) and torch.allclose(a, b)


def test_mapping_hand_checked():
    sd = {"style.1.weight": torch.eye(2) * 100, "style.1.bias": torch.tensor([0.0, -200.0])}
    w = ref.official_mapping(sd, torch.tensor([[3.0, 4.0]]))
    # pixelnorm: /sqrt(12.5); weight 100*0.01/sqrt(2) = 1/sqrt(2); bias*0.01 = (0, -2); lrelu; * sqrt(2).
    x = torch.tensor([3.0, 4.0]) / math.sqrt(12.5) / math.sqrt(2) + torch.tensor([0.0, -2.0])
    exp = torch.where(x > 0, x, 0.2 * x) * math.sqrt(2)
    assert torch.allclose(w[0], exp)


def test_forward_shapes_scales_and_magnitude(sd32):
    wp = _wplus(sd32)
    img, rgbs = ref.official_forward(sd32, wp, "const", return_rgbs=True)
    assert img.shape == (2, 3, 32, 32) and img.dtype == torch.float64
    assert [r.shape[-1] for r in rgbs] == [4, 8, 16, 32] and rgbs[-1] is img
    assert img.abs().max() > 1.5 and torch.isfinite(img).all()
    for res, r in zip([4, 8, 16], rgbs):
        assert torch.equal(ref.official_forward(sd32, wp, "const", resolution=res), r)
    full_widths = ref.official_uniform_widths(32, 1.0, channel_max=64)
    assert torch.equal(ref.official_forward(sd32, wp, "const", widths=full_widths), img)
    assert torch.equal(ref.official_forward(sd32, wp, "const", widths=full_widths + [7, 7]), img)
    noise = [sd32[f"noises.noise_{i}"].expand(2, -1, -1, -1) for i in range(7)]
    assert torch.equal(ref.official_forward(sd32, wp, noise), img)


def test_forward_every_term_matters(sd32):
    wp = _wplus(sd32)
    img = ref.official_forward(sd32, wp, "const")
    for key in ("conv1.noise.weight", "convs.3.activate.bias", "to_rgbs.0.bias", "convs.2.conv.modulation.bias",
                "input.input", "noises.noise_4"):
        sd = dict(sd32)
        sd[key] = sd[key] * 0.5
        assert not torch.allclose(ref.official_forward(sd, wp, "const"), img), key
    # Per-sample modulation: sample 0 alone gives the same as in the batch.
    assert torch.allclose(ref.official_forward(sd32, wp[:1], "const"), img[:1])


def test_sliced_widths(sd32):
    wp = _wplus(sd32)
    assert ref.official_uniform_widths(32, 0.25, channel_multiplier=2, channel_max=64) == [64] * 8  # capped
    widths = ref.official_uniform_widths(32, 1 / 32, channel_multiplier=2, channel_max=64)
    assert widths == [64] * 6 + [32, 32]
    img, rgbs = ref.official_forward(sd32, wp, "const", widths=widths, return_rgbs=True)
    full = ref.official_forward(sd32, wp, "const", resolution=16)
    assert torch.equal(rgbs[2], full) and not torch.allclose(img, ref.official_forward(sd32, wp, "const"))
    # Flexible widths: narrower constant input / conv1, float32 agrees with float64.
    flex = [32, 48, 16, 64, 40, 8, 24, 24]
    out64 = ref.official_forward(sd32, wp, "const", widths=flex)
    sd_f = {k: v.float() for k, v in sd32.items()}
    out32 = ref.official_forward(sd_f, wp.float(), "const", widths=flex)
    assert out32.dtype == torch.float32 and torch.allclose(out32.double(), out64, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        ref.official_forward(sd32, wp, "const", widths=flex[:5])

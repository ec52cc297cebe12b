"""The epilogue of the bf16 styled conv (`anycost::bf16_epilogue`) against its reference at every level this CPU has,
and the sub-pixel phase weight of the upsampling conv against the transposed conv + blur it replaces (the kernel
tests skip when anycost._C is not built)."""

import pytest
import torch
import torch.nn.functional as F

from anycost.ops import _ext, ref


def _bf16_cl(*shape):
    return torch.randn(*shape).to(torch.bfloat16, memory_format=torch.channels_last)


native = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _inputs(n, c, h, w, upsample, seed=0, shared_noise=True):
    """Conv output x (bf16 channels_last; the 4 * c phase planes of an [h, w] input when upsampling) and the epilogue's
    scale [n, c], bias [c] and noise for an output of c channels."""
    g = torch.Generator().manual_seed(seed)
    cx, hx, wx = (4 * c, h + 1, w + 1) if upsample else (c, h, w)
    x = torch.randn(n, cx, hx, wx, generator=g).to(torch.bfloat16, memory_format=torch.channels_last)
    ho, wo = (2 * h, 2 * w) if upsample else (h, w)
    scale = torch.rand(n, c, generator=g) + 0.5
    bias = torch.randn(c, generator=g)
    noise = torch.randn(1 if shared_noise else n, 1, ho, wo, generator=g)
    return x, scale, bias, noise


def _close(a, b):
    """Equal up to one bf16 rounding step of the result (the kernel and the reference sum in other orders)."""
    assert a.dtype == b.dtype == torch.bfloat16 and a.shape == b.shape
    assert a.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(a.float(), b.float(), atol=1e-6, rtol=2**-7)


# Channels below, at and past a vector (8 or 16 lanes) with tails; 1x1 inputs; batches.
SHAPES = [(1, 32, 8, 8), (2, 19, 5, 7), (1, 3, 1, 1), (1, 16, 2, 3), (2, 40, 4, 4)]


@native
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("full", [False, True])
def test_matches_reference(cpu_level, shape, upsample, full):
    x, scale, bias, noise = _inputs(*shape, upsample, seed=sum(shape), shared_noise=shape[0] == 1)
    args = (scale, bias, noise, 0.3, True) if full else (None, None, None, 0.0, False)
    _close(torch.ops.anycost.bf16_epilogue(x, upsample, *args), ref.bf16_epilogue(x, upsample, *args))


@native
@pytest.mark.parametrize("upsample", [False, True])
def test_each_term(cpu_level, upsample):
    """Scale, bias, per-sample noise and the activation one at a time: each changes the output as the reference's."""
    x, scale, bias, noise = _inputs(2, 24, 6, 5, upsample, shared_noise=False)
    for args in [(scale, None, None, 0.0, False), (None, bias, None, 0.0, False), (None, None, noise, -1.5, False),
                 (None, None, None, 0.0, True)]:
        _close(torch.ops.anycost.bf16_epilogue(x, upsample, *args), ref.bf16_epilogue(x, upsample, *args))


@native
def test_strided_inputs():
    """An NCHW conv output (copied to channels_last) and non-contiguous scale, bias and noise."""
    x, scale, bias, noise = _inputs(2, 12, 5, 6, False, shared_noise=False)
    nchw = x.contiguous()
    scale_t = scale.t().contiguous().t()
    bias_s = torch.stack([bias, bias], 1)[:, 0]
    noise_s = torch.stack([noise, noise], -1)[..., 0]
    args = (scale_t, bias_s, noise_s, 0.7, True)
    assert not (scale_t.is_contiguous() or bias_s.is_contiguous() or noise_s.is_contiguous())
    _close(torch.ops.anycost.bf16_epilogue(nchw, False, *args), ref.bf16_epilogue(x, False, scale, bias, noise, 0.7,
                                                                                   True))


@native
def test_rounds_once_and_keeps_nan():
    """The result is rounded to bf16 once (ties to even), a NaN stays NaN and infinities pass."""
    values = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), 1 + 2**-7, -3.0])
    x = values.reshape(1, 6, 1, 1).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    bias = torch.full((6,), 2**-8)  # half a step of bf16 at 1: 1 + 2^-8 ties down to 1, 1 + 3 * 2^-8 up to 1 + 2^-6
    out = torch.ops.anycost.bf16_epilogue(x, False, None, bias, None, 0.0, True).float().flatten()
    assert out[0] == 1.0 and torch.isnan(out[1]) and out[2] == float("inf")
    assert out[3] == -float("inf") and out[4] == 1 + 2**-6 and out[5] == pytest.approx(-0.6, rel=2**-7)


@native
def test_opcheck():
    x, scale, bias, noise = _inputs(2, 5, 3, 4, True, shared_noise=False)
    torch.library.opcheck(torch.ops.anycost.bf16_epilogue, (x, True, scale, bias, noise, 0.5, True))
    x, scale, bias, noise = _inputs(1, 7, 3, 4, False)
    torch.library.opcheck(torch.ops.anycost.bf16_epilogue, (x, False, None, bias, noise, 0.5, False))


def _rgb_inputs(n, c, h, w, seed=0):
    """The ToRGB terms for a plain layer of c channels: the modulated weight [n, 3, c], the bias and a skip."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(n, 3, c, generator=g), torch.randn(3, generator=g), torch.randn(n, 3, h, w, generator=g)


@native
@pytest.mark.parametrize("shape", SHAPES + [(1, 16, 3, 37), (2, 512, 4, 4)])
@pytest.mark.parametrize("keep_x", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_to_rgb_matches_reference(cpu_level, shape, keep_x, full):
    """The epilogue with the ToRGB of its output: widths and rows past a vector (blocks of positions with tails),
    with every term or none, the output kept or not (then never written)."""
    x, scale, bias, noise = _inputs(*shape, False, seed=sum(shape), shared_noise=shape[0] == 1)
    rgb_weight, rgb_bias, skip = _rgb_inputs(*shape, seed=sum(shape))
    args = (scale, bias, noise, 0.3, True) if full else (None, None, None, 0.0, False)
    rgb_args = (rgb_weight, rgb_bias, skip if full else None, keep_x)
    out, rgb = torch.ops.anycost.bf16_epilogue_to_rgb(x, *args, *rgb_args)
    want, want_rgb = ref.bf16_epilogue_to_rgb(x, *args, *rgb_args)
    if keep_x:
        _close(out, want)
    else:
        assert out.numel() == 0
    assert rgb.dtype == torch.float32 and rgb.is_contiguous()
    torch.testing.assert_close(rgb, want_rgb, atol=1e-5 * shape[1], rtol=1e-5)


@native
def test_to_rgb_reads_the_rounded_output():
    """The ToRGB sums the output as rounded to bf16 (what the next layer reads), not the value before: 1 + 2^-9
    rounds to 1."""
    x = torch.ones(1, 16, 1, 2).to(torch.bfloat16, memory_format=torch.channels_last)
    bias = torch.full((16,), 2**-9)
    weight = torch.zeros(1, 3, 16)
    weight[0, 0, 0] = 1.0
    _, rgb = torch.ops.anycost.bf16_epilogue_to_rgb(x, None, bias, None, 0.0, False, weight, torch.zeros(3), None, True)
    assert rgb[0, 0].tolist() == [[1.0, 1.0]] and not rgb[0, 1:].any()


@native
def test_to_rgb_opcheck():
    x, scale, bias, noise = _inputs(2, 5, 3, 4, False, shared_noise=False)
    rgb_weight, rgb_bias, skip = _rgb_inputs(2, 5, 3, 4)
    for keep_x in (True, False):
        torch.library.opcheck(torch.ops.anycost.bf16_epilogue_to_rgb,
                              (x, scale, bias, noise, 0.5, True, rgb_weight, rgb_bias, skip, keep_x))


@native
@pytest.mark.parametrize(("change", "message"), [
    ({"rgb_weight": torch.randn(1, 3, 5)}, "rgb_weight must be \\[1, 3, 4\\]"),
    ({"rgb_weight": torch.randn(1, 4, 4)}, "rgb_weight must be"),
    ({"rgb_weight": torch.randn(1, 3, 4).double()}, "float32"),
    ({"rgb_bias": torch.randn(4)}, "rgb_bias must be \\[3\\]"),
    ({"skip": torch.randn(1, 3, 3, 4)}, "skip must be \\[1, 3, 3, 3\\]"),
    ({"skip": torch.randn(3, 3, 3)}, "skip"),
    ({"x": _bf16_cl(1, 16, 3, 3)}, "rgb_weight must be"),
])
def test_to_rgb_bad_inputs(change, message):
    args = dict(x=_bf16_cl(1, 4, 3, 3), scale=None, bias=None, noise=None, noise_strength=0.0, activate=False,
                rgb_weight=torch.randn(1, 3, 4), rgb_bias=torch.randn(3), skip=None, keep_x=True)
    args.update(change)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.anycost.bf16_epilogue_to_rgb(*args.values())


@native
def test_cached_zeros():
    """Zeros of the asked size and layout, also from a reused block of the output cache that held data."""
    like = torch.zeros(1, dtype=torch.bfloat16)
    size = [1, 16, 256, 257]  # 2 MiB: above the cache's smallest block
    for _ in range(2):
        out = torch.ops.anycost.cached_zeros(like, size, True)
        assert out.dtype == torch.bfloat16 and list(out.shape) == size
        assert out.is_contiguous(memory_format=torch.channels_last) and not out.any()
        out.fill_(3.0)
        del out
    flat = torch.ops.anycost.cached_zeros(torch.zeros(1), [5, 7], False)
    assert flat.dtype == torch.float32 and flat.is_contiguous() and not flat.any()
    torch.library.opcheck(torch.ops.anycost.cached_zeros, (like, [2, 3, 4, 5], True))
    with pytest.raises(RuntimeError, match="sizes must be >= 0"):
        torch.ops.anycost.cached_zeros(like, [2, -1], False)
    with pytest.raises(RuntimeError, match="channels_last needs 4 sizes"):
        torch.ops.anycost.cached_zeros(like, [2, 3], True)


def _bf16(*shape):
    return torch.randn(*shape).to(torch.bfloat16, memory_format=torch.channels_last)


@native
@pytest.mark.parametrize(("args", "message"), [
    ((torch.randn(1, 4, 3, 3), False, None, None, None, 0.0, False), "must be a bf16"),
    ((torch.randn(4, 3, 3).bfloat16(), False, None, None, None, 0.0, False), "must be a bf16"),
    ((_bf16(1, 6, 3, 3), True, None, None, None, 0.0, False), "4 \\* C phase planes"),
    ((_bf16(1, 8, 1, 3), True, None, None, None, 0.0, False), "4 \\* C phase planes"),
    ((_bf16(1, 0, 3, 3), False, None, None, None, 0.0, False), "non-empty"),
    ((_bf16(2, 4, 3, 3), False, torch.rand(1, 4), None, None, 0.0, False), "scale must be"),
    ((_bf16(1, 8, 3, 3), True, torch.rand(1, 8), None, None, 0.0, False), "scale must be"),
    ((_bf16(1, 4, 3, 3), False, None, torch.randn(5), None, 0.0, False), "bias must be"),
    ((_bf16(1, 4, 3, 3), False, None, None, torch.randn(1, 1, 3, 4), 0.0, False), "noise must be"),
    ((_bf16(1, 8, 3, 3), True, None, None, torch.randn(1, 1, 3, 3), 0.0, False), "noise must be"),
    ((_bf16(1, 4, 3, 3), False, None, None, torch.randn(1, 1, 3, 3).double(), 0.0, False), "float32"),
])
def test_bad_inputs(args, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ops.anycost.bf16_epilogue(*args)


@pytest.mark.parametrize(("c_out", "c_in", "h", "w"), [(4, 5, 6, 7), (1, 1, 1, 1), (3, 2, 1, 4)])
def test_phase_weight_is_the_transposed_conv_and_blur(c_out, c_in, h, w):
    """conv(x, upsample_phase_weight(w)) holds the four phases of modulated_conv2d's stride-2 transposed conv (float64),
    and the epilogue's interleave and blur of them gives its upsampling (the transposed conv, then the [1, 3, 3, 1]
    blur)."""
    g = torch.Generator().manual_seed(c_out * c_in + h)
    x = torch.randn(2, c_in, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c_in, 3, 3, generator=g, dtype=torch.float64)
    t = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
    want = ref.upfirdn2d(t, ref.fir_kernel(gain=4.0, dtype=torch.float64), pad=(1, 1))
    phases = F.conv2d(x, ref.upsample_phase_weight(weight), padding=1)
    assert phases.shape == (2, 4 * c_out, h + 1, w + 1)
    n, _, h1, w1 = phases.shape
    interleaved = phases.reshape(n, 2, 2, c_out, h1, w1).permute(0, 3, 4, 1, 5, 2).reshape(n, c_out, 2 * h1, 2 * w1)
    torch.testing.assert_close(interleaved[:, :, :-1, :-1], t)  # the transposed conv's 2h + 1 rows and columns
    assert not interleaved[:, :, -1].any() and not interleaved[:, :, :, -1].any()
    # the epilogue's reference blurs the phase planes into the same image (up to the bf16 roundings)
    out = ref.bf16_epilogue(phases.to(torch.bfloat16, memory_format=torch.channels_last), True)
    torch.testing.assert_close(out.double(), want, atol=2**-6 * want.abs().max().item(), rtol=0)

"""The epilogue of the bf16 styled conv (`anycost::bf16_epilogue`) against its reference at every level this CPU has,
and the sub-pixel phase weight of the upsampling conv against the transposed conv + blur it replaces (the kernel
tests skip when anycost._C is not built)."""

import pytest
import torch
import torch.nn.functional as F

from anycost.ops import _ext, ref

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

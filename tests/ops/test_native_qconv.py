"""The native int8 styled conv (anycost::qconv2d_pack, anycost::qconv2d) against the torch reference built from
integer math (`ref.qconv2d`: int64 conv / transposed conv of the unpacked weight), at every CPU level this machine
has. With out_scale 1 and no noise, bias or activation the plain conv's output is the int32 accumulator itself:
compared exactly (the upsampling conv's is blurred in fp32: compared to fp32 rounding)."""

import pytest
import torch

from anycost import ops
from anycost.ops import _ext, ref

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _weight(c_out, c_in, k, seed=0, sliced=False):
    g = torch.Generator().manual_seed(seed)
    if sliced:  # a sub-generator's [c_out, c_in] slice of a wider weight: strided
        full = torch.randint(-127, 128, (c_out + 3, c_in + 5, k, k), generator=g, dtype=torch.int8)
        return full[2:2 + c_out, 1:1 + c_in]
    return torch.randint(-127, 128, (c_out, c_in, k, k), generator=g, dtype=torch.int8)


def _inputs(n, c_in, c_out, h, w, seed=1, layout="contiguous"):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g) * 2
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "sliced":
        x = torch.randn(n, c_in + 4, h, w + 3, generator=g)[:, 2:2 + c_in, :, 1:1 + w]
    styles = torch.rand(n, c_in, generator=g) * 3 - 1
    return x, styles, torch.rand(n, c_out, generator=g) * 1e-3


@pytest.mark.parametrize(("c_out", "c_in", "k"), [(1, 1, 1), (9, 5, 3), (17, 33, 3), (8, 4, 1), (3, 70, 3)])
@pytest.mark.parametrize("sliced", [False, True])
def test_pack_matches_reference_layout(int8_level, c_out, c_in, k, sliced):
    w = _weight(c_out, c_in, k, sliced=sliced)
    packed, wsum = ops.qconv2d_pack(w, impl="kernel")
    ref_packed, ref_wsum = ref.qconv2d_pack(w)
    assert packed.shape == (-(-c_out // 8), -(-c_in // 4), k * k, 8, 4) and packed.dtype == torch.int8
    assert torch.equal(packed, ref_packed) and torch.equal(wsum, ref_wsum) and wsum.dtype == torch.int32
    assert torch.equal(wsum, w.sum(1, dtype=torch.int32).reshape(c_out, k * k))
    assert torch.equal(ref.qconv2d_unpack(packed, c_out, c_in), w)


@pytest.mark.parametrize(("n", "c_in", "c_out", "h", "w", "k"),
                         [(1, 1, 1, 1, 1, 3), (2, 5, 9, 7, 3, 3), (3, 17, 13, 5, 11, 3), (1, 33, 24, 16, 16, 3),
                          (2, 6, 10, 9, 4, 1), (1, 130, 8, 6, 6, 3)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
def test_accumulators_are_exact(int8_level, n, c_in, c_out, h, w, k, layout):
    x, styles, _ = _inputs(n, c_in, c_out, h, w, layout=layout)
    packed, wsum = ops.qconv2d_pack(_weight(c_out, c_in, k, sliced=True))
    ones = torch.ones(n, c_out)
    got = ops.qconv2d(x, styles, 0.05, packed, wsum, ones, impl="kernel")
    want = ref.qconv2d(x, styles, 0.05, packed, wsum, ones)
    assert got.shape == (n, c_out, h, w) and got.is_contiguous()
    assert torch.equal(got, want)


@pytest.mark.parametrize("noise_batch", [1, 3])
@pytest.mark.parametrize("activate", [False, True])
@pytest.mark.parametrize("upsample", [False, True])
def test_epilogue_matches_reference(int8_level, noise_batch, activate, upsample):
    n, c_in, c_out, h, w = 3, 21, 19, 8, 13
    x, styles, out_scale = _inputs(n, c_in, c_out, h, w, layout="sliced")
    packed, wsum = ops.qconv2d_pack(_weight(c_out, c_in, 3))
    scale = 2 if upsample else 1
    noise, strength = torch.randn(noise_batch, 1, h * scale, w * scale), torch.tensor([0.3])
    bias = torch.randn(2 * c_out)[::2]  # strided
    out_scale = out_scale.t().contiguous().t()  # strided [N, C_out]
    args = (x, styles, 0.02, packed, wsum, out_scale)
    kw = dict(upsample=upsample, noise=noise, noise_strength=strength, bias=bias, activate=activate)
    got = ops.qconv2d(*args, **kw, impl="kernel")
    want = ref.qconv2d(*args, **kw)
    assert got.shape == (n, c_out, h * scale, w * scale)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize(("n", "c_in", "c_out", "h", "w"),
                         [(1, 1, 1, 1, 1), (2, 5, 9, 7, 3), (1, 33, 24, 16, 16), (3, 10, 17, 5, 12)])
def test_upsampling_accumulators(int8_level, n, c_in, c_out, h, w):
    """The transposed conv in integers, blurred in fp32: equal to fp32 rounding of the blur."""
    x, styles, _ = _inputs(n, c_in, c_out, h, w, layout="channels_last")
    packed, wsum = ops.qconv2d_pack(_weight(c_out, c_in, 3, sliced=True))
    ones = torch.ones(n, c_out)
    got = ops.qconv2d(x, styles, 0.05, packed, wsum, ones, upsample=True, impl="kernel")
    want = ref.qconv2d(x, styles, 0.05, packed, wsum, ones, upsample=True)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * float(want.abs().max()))


@pytest.mark.parametrize(("n", "c_in", "c_out", "h", "w", "upsample"),
                         [(1, 1, 1, 1, 1, False), (3, 17, 13, 5, 11, False), (2, 33, 24, 16, 37, False),
                          (2, 10, 17, 5, 12, True), (1, 6, 9, 3, 40, True)])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "sliced"])
def test_dynamic_scale_matches_reference(int8_level, n, c_in, c_out, h, w, upsample, layout):
    """act_scale None: each sample's own scale (the last sample's range is 30x the others'), found by the kernel
    and multiplied into out_scale: as the reference, and as the static op with that sample's scale."""
    x, styles, out_scale = _inputs(n, c_in, c_out, h, w, layout=layout)
    x[-1] *= 30
    packed, wsum = ops.qconv2d_pack(_weight(c_out, c_in, 3, sliced=True))
    got = ops.qconv2d(x, styles, None, packed, wsum, out_scale, upsample=upsample, impl="kernel")
    want = ref.qconv2d(x, styles, None, packed, wsum, out_scale, upsample=upsample)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6 * float(want.abs().max()))
    scales = ref.qconv2d_dynamic_scale(x, styles)
    for i in range(n):
        static = ops.qconv2d(x[i:i + 1], styles[i:i + 1], float(scales[i]), packed, wsum,
                             out_scale[i:i + 1] * scales[i], upsample=upsample, impl="kernel")
        torch.testing.assert_close(got[i:i + 1], static, rtol=1e-6, atol=1e-6 * float(static.abs().max()))


def test_dynamic_scale_maps_each_samples_peak_to_127(int8_level):
    """Through a 1x1 identity weight the output is q * s: the largest |x| of each sample comes back (as 127 s) and
    no value clamps; an all-zero sample gets the smallest scale and zeros."""
    x = torch.randn(3, 1, 7, 9, generator=torch.Generator().manual_seed(4))
    x[0] *= 1e-3
    x[2] = 0
    packed, wsum = ops.qconv2d_pack(torch.ones(1, 1, 1, 1, dtype=torch.int8))
    out = ops.qconv2d(x, torch.ones(3, 1), None, packed, wsum, torch.ones(3, 1), impl="kernel")
    torch.testing.assert_close(out.abs().amax((1, 2, 3))[:2], x.abs().amax((1, 2, 3))[:2], rtol=1e-6, atol=0)
    for i in range(2):  # within half a level of the sample's own scale
        torch.testing.assert_close(out[i], x[i], rtol=0, atol=float(x[i].abs().max()) / 254 * 1.0001)
    assert torch.equal(out[2], torch.zeros_like(out[2]))


def test_levels_compute_the_same_integers():
    x, styles, _ = _inputs(2, 45, 40, 12, 12)
    packed, wsum = ops.qconv2d_pack(_weight(40, 45, 3))
    ones = torch.ones(2, 40)
    outs = {}
    try:
        for level in ops.cpu_capabilities():
            ops._set_cpu_capability_for_testing(level)
            outs[level] = ops.qconv2d(x, styles, 0.03, packed, wsum, ones, impl="kernel")
    finally:
        ops._set_cpu_capability_for_testing(None)
    for level, out in outs.items():
        assert torch.equal(out, outs["portable"]), level


def test_quantize_rounds_half_to_even_and_clamps():
    x = torch.tensor([2.5, 3.5, -2.5, 200.0, -200.0, 0.49999997, -126.5]).reshape(1, 1, 1, 7)
    q = ref.qconv2d_quantize(x, torch.ones(1, 1), 1.0)
    assert q.flatten().tolist() == [2, 4, -2, 127, -127, 0, -126]
    # The kernel agrees (a 1x1 identity weight: the output is the quantised input).
    packed, wsum = ops.qconv2d_pack(torch.ones(1, 1, 1, 1, dtype=torch.int8))
    assert torch.equal(ops.qconv2d(x, torch.ones(1, 1), 1.0, packed, wsum, torch.ones(1, 1), impl="kernel"), q)


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[-127, 127\]"):
        ops.qconv2d_pack(torch.full((2, 3, 3, 3), -128, dtype=torch.int8), impl="kernel")
    with pytest.raises(ValueError, match=r"\[-127, 127\]"):
        ops.qconv2d_pack(torch.full((2, 3, 3, 3), -128, dtype=torch.int8), impl="ref")
    with pytest.raises(TypeError, match="int8"):
        ops.qconv2d_pack(torch.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match="K 1 or 3"):
        ops.qconv2d_pack(torch.zeros(2, 3, 5, 5, dtype=torch.int8))
    x, styles, out_scale = _inputs(1, 6, 5, 4, 4)
    packed, wsum = ops.qconv2d_pack(_weight(5, 6, 3))
    packed1, wsum1 = ops.qconv2d_pack(_weight(5, 6, 1))
    with pytest.raises(ValueError, match="upsample needs a 3x3"):
        ops.qconv2d(x, styles, 0.1, packed1, wsum1, out_scale, upsample=True)
    with pytest.raises(ValueError, match="packed must be"):  # 3 input channels: 1 group of 4, packed has 2
        ops.qconv2d(x[:, :3], styles[:, :3], 0.1, packed, wsum, out_scale)
    with pytest.raises(ValueError, match="out_scale"):
        ops.qconv2d(x, styles, 0.1, packed, wsum, out_scale[:, :4])
    with pytest.raises(ValueError, match="act_scale"):
        ops.qconv2d(x, styles, 0.0, packed, wsum, out_scale)
    with pytest.raises(ValueError, match="noise"):
        ops.qconv2d(x, styles, 0.1, packed, wsum, out_scale, noise=torch.randn(1, 1, 4, 5), noise_strength=None)
    with pytest.raises(ValueError, match="noise"):
        ops.qconv2d(x, styles, 0.1, packed, wsum, out_scale, upsample=True, noise=torch.randn(1, 1, 4, 4))
    with pytest.raises(RuntimeError, match="packed must be"):  # the op's own check
        torch.ops.anycost.qconv2d(x, styles, 0.1, packed[:, :1], wsum, out_scale, False, None, None, None, False)


def test_opcheck():
    w = _weight(9, 6, 3, sliced=True)
    torch.library.opcheck(torch.ops.anycost.qconv2d_pack, (w,))
    x, styles, out_scale = _inputs(2, 6, 9, 5, 4)
    packed, wsum = ops.qconv2d_pack(w)
    args = (x, styles, 0.05, packed, wsum, out_scale)
    noise, strength, bias = torch.randn(1, 1, 5, 4), torch.tensor([0.2]), torch.randn(9)
    torch.library.opcheck(torch.ops.anycost.qconv2d, (*args, False, noise, strength, bias, True))
    torch.library.opcheck(torch.ops.anycost.qconv2d, (*args, False, None, None, None, False))
    torch.library.opcheck(torch.ops.anycost.qconv2d, (*args, True, torch.randn(2, 1, 10, 8), strength, bias, True))
    dynamic = (x, styles, None, packed, wsum, out_scale)
    torch.library.opcheck(torch.ops.anycost.qconv2d, (*dynamic, True, noise.repeat(1, 1, 2, 2), strength, bias, True))


def _rgb_args(n, c_out, h, w, skip, seed=7):
    g = torch.Generator().manual_seed(seed)
    return dict(noise=torch.randn(1, 1, h, w, generator=g), noise_strength=torch.tensor([0.3]),
                bias=torch.randn(2 * c_out, generator=g)[::2], rgb_weight=torch.randn(3, c_out, 1, 1, generator=g),
                rgb_styles=torch.randn(n, c_out, generator=g), rgb_bias=torch.randn(3, generator=g),
                rgb_weight_scale=0.1,
                skip=torch.randn(n, 3, h // 2, w, generator=g)[..., ::2] if skip else None)  # a strided skip


# 130 output channels: three channel blocks of the kernel (64 each), whose RGB sums meet in the partial planes.
@pytest.mark.parametrize(("n", "c_in", "c_out", "h", "w", "skip"),
                         [(1, 1, 1, 1, 1, False), (2, 17, 13, 6, 10, True), (1, 33, 130, 8, 6, True),
                          (3, 8, 24, 3, 7, False), (1, 16, 32, 40, 36, True)])
@pytest.mark.parametrize("keep_x", [True, False])
@pytest.mark.parametrize("act_scale", [0.05, None])
@pytest.mark.parametrize("layout", ["contiguous", "sliced"])
def test_to_rgb_matches_reference(int8_level, n, c_in, c_out, h, w, skip, keep_x, act_scale, layout):
    """The ToRGB summed in the int8 conv's epilogue: the conv's output as `qconv2d` (exactly: the same kernel), the
    RGB as the reference ToRGB of it to fp32 rounding; without keep_x the output is never made."""
    x, styles, out_scale = _inputs(n, c_in, c_out, h, w, layout=layout)
    packed, wsum = ops.qconv2d_pack(_weight(c_out, c_in, 3, sliced=True))
    args, kw = (x, styles, act_scale, packed, wsum, out_scale), _rgb_args(n, c_out, h, w, skip)
    got_x, got_rgb = ops.qconv2d_to_rgb(*args, **kw, keep_x=keep_x)
    want_x, want_rgb = ref.qconv2d_to_rgb(*args, **kw)
    conv = {k: kw[k] for k in ("noise", "noise_strength", "bias")}
    if keep_x:
        assert torch.equal(got_x, ops.qconv2d(*args, **conv, activate=True, impl="kernel"))
        torch.testing.assert_close(got_x, want_x, rtol=1e-5, atol=1e-5 * float(want_x.abs().max()))
    else:
        assert got_x is None
    assert got_rgb.shape == (n, 3, h, w) and got_rgb.is_contiguous()
    torch.testing.assert_close(got_rgb, want_rgb, rtol=1e-5, atol=1e-5 * float(want_rgb.abs().max()))


def test_to_rgb_bad_input():
    x, styles, out_scale = _inputs(1, 6, 5, 4, 4)
    packed, wsum = ops.qconv2d_pack(_weight(5, 6, 3))
    kw = _rgb_args(1, 5, 4, 4, True)
    with pytest.raises(ValueError, match=r"rgb_weight must be \[3, 5, 1, 1\]"):
        ops.qconv2d_to_rgb(x, styles, 0.1, packed, wsum, out_scale, **{**kw, "rgb_weight": torch.randn(3, 4, 1, 1)})
    with pytest.raises(ValueError, match=r"rgb_styles must be \[1, 5\]"):
        ops.qconv2d_to_rgb(x, styles, 0.1, packed, wsum, out_scale, **{**kw, "rgb_styles": torch.randn(2, 5)})
    with pytest.raises(ValueError, match="out_scale"):
        ops.qconv2d_to_rgb(x, styles, 0.1, packed, wsum, out_scale[:, :4], **kw)
    with pytest.raises(RuntimeError, match="skip must be"):  # odd output size
        ops.qconv2d_to_rgb(x[:, :, :3], styles, 0.1, packed, wsum, out_scale,
                           **{**kw, "noise": None, "skip": torch.randn(1, 3, 1, 2)})
    with pytest.raises(RuntimeError, match="rgb_bias must be"):  # the op's own check
        torch.ops.anycost.qconv2d_to_rgb(x, styles, 0.1, packed, wsum, out_scale, None, None, None, kw["rgb_weight"],
                                         kw["rgb_styles"], torch.randn(4), 0.1, None, True)


def test_to_rgb_opcheck():
    x, styles, out_scale = _inputs(2, 6, 9, 6, 4)
    packed, wsum = ops.qconv2d_pack(_weight(9, 6, 3, sliced=True))
    kw = _rgb_args(2, 9, 6, 4, True)
    rgb = (kw["rgb_weight"], kw["rgb_styles"], kw["rgb_bias"], 0.1)
    for act_scale, skip, keep_x in [(0.05, kw["skip"], True), (None, None, False)]:
        torch.library.opcheck(torch.ops.anycost.qconv2d_to_rgb,
                              (x, styles, act_scale, packed, wsum, out_scale, kw["noise"], kw["noise_strength"],
                               kw["bias"], *rgb, skip, keep_x))

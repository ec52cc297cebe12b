"""Reference ops against naive loops / first principles, and the op API's input checks."""

import math

import pytest
import torch
import torch.nn.functional as F

from anycost import ops
from anycost.ops import ref


def _naive_upfirdn(x, k, up, down, pad):
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    big = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    big[:, :, ::up, ::up] = x
    padded = torch.zeros(n, c, h * up + y0 + y1, w * up + x0 + x1, dtype=x.dtype)
    padded[:, :, y0:y0 + h * up, x0:x0 + w * up] = big
    kh, kw = k.shape
    oh, ow = padded.shape[2] - kh + 1, padded.shape[3] - kw + 1
    out = torch.zeros(n, c, oh, ow, dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):  # true convolution: the kernel is flipped
            out[:, :, i, j] = (padded[:, :, i:i + kh, j:j + kw] * k.flip(0, 1)).sum((2, 3))
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize(("up", "down", "pad"), [(1, 1, (1, 1, 1, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (2, 2, 1, 1)),
                                                 (2, 2, (0, 3, 1, 2))])
def test_upfirdn2d_matches_naive(up, down, pad):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    k = torch.randn(4, 3, dtype=torch.float64)  # asymmetric: catches a missing flip
    torch.testing.assert_close(ref.upfirdn2d(x, k, up, down, pad), _naive_upfirdn(x, k, up, down, pad))


def test_upfirdn2d_negative_pad_crops():
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    k = torch.ones(1, 1, dtype=torch.float64)
    torch.testing.assert_close(ref.upfirdn2d(x, k, pad=(-1, -2, -3, 0)), x[:, :, 3:, 1:-2])


def test_bias_act():
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    y = ref.bias_act(x, b, "lrelu")
    torch.testing.assert_close(y, F.leaky_relu(x + b.reshape(1, 4, 1, 1), 0.2) * math.sqrt(2))
    torch.testing.assert_close(ref.bias_act(x, b), x + b.reshape(1, 4, 1, 1))
    torch.testing.assert_close(ref.bias_act(x, None, "lrelu", gain=1.0), F.leaky_relu(x, 0.2))
    with pytest.raises(ValueError, match="unknown activation"):
        ops.bias_act(x, b, "gelu")


def _naive_modconv(x, weight, styles, scale, demod, up):
    outs = []
    for n in range(x.shape[0]):
        w = scale * weight * styles[n].reshape(1, -1, 1, 1)
        if demod:
            w = w / torch.sqrt(w.square().sum((1, 2, 3), keepdim=True) + 1e-8)
        if up:  # transposed conv = zero insertion + full padding + flipped-kernel conv
            z = ref.upfirdn2d(x[n:n + 1], torch.ones(1, 1, dtype=x.dtype), up=2, pad=(2, 1, 2, 1))
            t = F.conv2d(z, w.flip(2, 3))
            outs.append(ref.upfirdn2d(t, ref.fir_kernel(gain=4.0, dtype=x.dtype), pad=(1, 1)))
        else:
            outs.append(F.conv2d(x[n:n + 1], w, padding=weight.shape[-1] // 2))
    return torch.cat(outs)


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demod", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
def test_modulated_conv2d_matches_per_sample_conv_on_sliced_views(up, demod, batch):
    full = torch.randn(1, 11, 9, 3, 3, dtype=torch.float64)
    weight = full[0, :7, :5]  # a strided, non-contiguous view
    assert not weight.is_contiguous()
    x = torch.randn(batch, 5, 5, 7, dtype=torch.float64)
    s = torch.randn(batch, 5, dtype=torch.float64) + 1
    scale = 1 / math.sqrt(9 * 9)
    out = ops.modulated_conv2d(x, weight, s, weight_scale=scale, demodulate=demod, upsample=up, impl="ref")
    assert out.shape == (batch, 7, 10, 14) if up else (batch, 7, 5, 7)
    torch.testing.assert_close(out, _naive_modconv(x, weight, s, scale, demod, up))


def test_modulated_conv2d_noise_bias_activation():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    s = torch.ones(2, 3, dtype=torch.float64)
    noise = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    strength = torch.tensor([0.7], dtype=torch.float64)
    bias = torch.randn(5, dtype=torch.float64)
    plain = ref.modulated_conv2d(x, w, s, weight_scale=0.3)
    full = ref.modulated_conv2d(x, w, s, weight_scale=0.3, noise=noise, noise_strength=strength, bias=bias,
                                activate=True)
    torch.testing.assert_close(full, ref.bias_act(plain + 0.7 * noise, bias, "lrelu"))


def test_to_rgb_adds_the_upsampled_skip():
    x = torch.randn(1, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(3, 4, 1, 1, dtype=torch.float64)
    s = torch.randn(1, 4, dtype=torch.float64)
    bias = torch.randn(3, dtype=torch.float64)
    skip = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    out = ops.to_rgb(x, w, s, bias, weight_scale=0.5, skip=skip, impl="ref")
    conv = F.conv2d(x, 0.5 * w * s.reshape(1, 4, 1, 1)) + bias.reshape(1, 3, 1, 1)
    up = ref.upfirdn2d(skip, ref.fir_kernel(gain=4.0, dtype=torch.float64), up=2, pad=(2, 1))
    torch.testing.assert_close(out, conv + up)
    # the upsampled skip of a constant image is that constant (the FIR gain of 4 undoes the zeros)
    ones = ref.upfirdn2d(torch.ones(1, 1, 6, 6), ref.fir_kernel(gain=4.0), up=2, pad=(2, 1))
    torch.testing.assert_close(ones[:, :, 2:-2, 2:-2], torch.ones(1, 1, 8, 8))


def test_gradcheck_modulated_conv2d():
    x = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    for up in (False, True):
        def op(x, w, s, up=up):
            return ref.modulated_conv2d(x, w, s, weight_scale=0.2, upsample=up)

        assert torch.autograd.gradcheck(op, (x, w, s))


@pytest.mark.parametrize(("args", "error", "message"), [
    (dict(x=torch.randn(3, 5, 5)), ValueError, "x must have 4 dims"),
    (dict(x=torch.randn(1, 4, 5, 5)), ValueError, "weight has 3 input channels, x has 4"),
    (dict(x=torch.zeros(1, 3, 5, 5, dtype=torch.int64)), TypeError, "x must be a floating-point tensor"),
    (dict(x=torch.randn(0, 3, 5, 5), styles=torch.randn(0, 3)), ValueError, "empty batch"),
    (dict(styles=torch.randn(1, 4)), ValueError, r"styles must be \[1, 3\]"),
    (dict(weight=torch.randn(2, 3, 1, 1), upsample=True), ValueError, "upsample needs a 3x3"),
    (dict(noise=torch.randn(1, 1, 4, 4)), ValueError, "noise must be"),
    (dict(x=[1.0]), TypeError, "x must be a torch.Tensor"),
])
def test_modulated_conv2d_bad_inputs(args, error, message):
    kw = dict(x=torch.randn(1, 3, 5, 5), weight=torch.randn(2, 3, 3, 3), styles=torch.randn(1, 3))
    kw.update(args)
    with pytest.raises(error, match=message):
        ops.modulated_conv2d(kw.pop("x"), kw.pop("weight"), kw.pop("styles"), weight_scale=1.0, **kw)


def test_impl_selection():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match="impl must be one of"):
        ops.upfirdn2d(x, torch.ones(2, 2), impl="cuda")
    with pytest.raises(ValueError, match="up and down must be 1 or 2"):
        ops.upfirdn2d(x, torch.ones(2, 2), up=3)
    assert ops.resolve_impl("ref") == "ref"
    if ops.resolve_impl("auto") == "ref":
        with pytest.raises(RuntimeError, match="impl='kernel' asked for"):
            ops.resolve_impl("kernel")

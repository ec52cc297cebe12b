"""The image-to-image students' native ops against their references at every level this CPU has: the depthwise 3x3
conv (+ fused instance norm) and the pointwise conv (+ fused instance norm and ReLU) (skipped when anycost._C is not
built)."""

import pytest
import torch

from anycost import ops
from anycost.ops import _ext, ref

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _inputs(n, c, h, w, seed=0, layout="contiguous"):
    g = torch.Generator().manual_seed(seed)
    if layout == "contiguous":
        x = torch.randn(n, c, h, w, generator=g)
    elif layout == "channel_slice":  # the leading channels of a wider activation, as a sub-network passes
        x = torch.randn(n, c + 3, h, w, generator=g)[:, :c]
    elif layout == "channels_last":
        x = torch.randn(n, h, w, c, generator=g).permute(0, 3, 1, 2)
    else:  # every other column of a wider image: a row stride that is not 1
        x = torch.randn(n, c, h, 2 * w, generator=g)[..., ::2]
    weight = torch.randn(c + 4, 1, 3, 3, generator=g)[:c]  # a slice of a wider layer's weight
    bias = torch.randn(2 * c, generator=g)[::2]
    return x, weight, bias


def _close(a, b):
    torch.testing.assert_close(a, b, atol=2e-5 * max(1.0, b.abs().max().item()), rtol=1e-5)


# Planes narrower and wider than one vector (8 or 16 lanes), a tail at every lane count, 2x2 (the least reflection
# padding allows), single channels and batches; rows of 2, 4 and 8 that a vector holds whole (the packed path: 8 x 8
# with 16 lanes, 4 x 4 and 8 x 2 at both widths, 6 x 4 with 8 lanes only).
SHAPES = [(1, 8, 8, 8), (2, 5, 7, 9), (1, 3, 2, 2), (1, 1, 17, 33), (3, 16, 16, 16), (1, 32, 64, 64), (2, 4, 1, 5),
          (2, 3, 4, 4), (1, 2, 8, 2), (1, 5, 6, 4)]
CASES = [(s, r) for s in SHAPES for r in (True, False) if min(s[2:]) > 1 or not r]  # reflection needs 2x2


@pytest.mark.parametrize(("shape", "reflect"), CASES)
@pytest.mark.parametrize("normalize", [False, True])
def test_forward_matches_reference(cpu_level, shape, reflect, normalize):
    x, w, b = _inputs(*shape, seed=sum(shape))
    out = ops.depthwise_conv3x3(x, w, b, reflect=reflect, normalize=normalize, impl="kernel")
    assert out.shape == x.shape and out.is_contiguous()
    _close(out, ref.depthwise_conv3x3(x, w, b, reflect, normalize))


@pytest.mark.parametrize("layout", ["channel_slice", "channels_last", "strided_rows"])
@pytest.mark.parametrize("size", [(9, 11), (8, 8)])
def test_strided_inputs(cpu_level, layout, size):
    x, w, b = _inputs(2, 6, *size, layout=layout)
    assert not x.is_contiguous()
    for normalize in (False, True):
        _close(ops.depthwise_conv3x3(x, w, b, normalize=normalize, impl="kernel"),
               ref.depthwise_conv3x3(x.contiguous(), w.contiguous(), b.contiguous(), True, normalize))


def test_without_bias_and_other_eps():
    x, w, _ = _inputs(1, 4, 5, 6)
    _close(ops.depthwise_conv3x3(x, w, None, impl="kernel"), ref.depthwise_conv3x3(x, w))
    # a constant plane: the norm's variance is 0, so eps alone sets the scale (and a wrong eps shows)
    flat = torch.ones(1, 2, 4, 4)
    _close(ops.depthwise_conv3x3(flat, w[:2], None, normalize=True, eps=0.1, impl="kernel"),
           ref.depthwise_conv3x3(flat, w[:2], None, True, True, 0.1))


def test_gradients_come_from_the_reference():
    x, w, b = (t.clone().requires_grad_(True) for t in _inputs(2, 3, 5, 4))
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.depthwise_conv3x3(x, w, b, normalize=True, impl=impl)
        weights = torch.linspace(-1, 2, out.numel()).reshape(out.shape)
        grads[impl] = torch.autograd.grad((out * weights).sum(), [x, w, b])
    for a, g in zip(grads["kernel"], grads["ref"]):
        _close(a, g)


def test_inference_calls_skip_the_python_autograd_kernel():
    """Without a gradient to compute, the op is called below autograd (its autograd kernel is Python and costs ~4 us
    a call); with one, through it, and the output carries the graph."""
    x, w, b = _inputs(1, 4, 6, 6)
    below = []
    real = torch.ops.anycost.depthwise_conv3x3

    class Spy:
        def __call__(self, *args):
            below.append(torch._C._dispatch_tls_is_dispatch_key_excluded(torch._C.DispatchKey.AutogradFunctionality))
            return real(*args)

    try:
        torch.ops.anycost.depthwise_conv3x3 = Spy()
        fast = ops.depthwise_conv3x3(x, w, b, impl="kernel")
        graph = ops.depthwise_conv3x3(x, w.clone().requires_grad_(True), b, impl="kernel")
    finally:
        torch.ops.anycost.depthwise_conv3x3 = real
    assert below == [True, False] and fast.grad_fn is None and graph.grad_fn is not None
    torch.testing.assert_close(fast, graph.detach(), rtol=0, atol=0)


def test_auto_takes_the_kernel_only_without_gradients():
    x, w, b = _inputs(1, 4, 6, 6)
    calls = []
    real = torch.ops.anycost.depthwise_conv3x3

    class Spy:
        def __call__(self, *args):
            calls.append(args)
            return real(*args)

    try:
        torch.ops.anycost.depthwise_conv3x3 = Spy()
        ops.depthwise_conv3x3(x, w, b)
        assert len(calls) == 1
        ops.depthwise_conv3x3(x, w.clone().requires_grad_(True), b)
        assert len(calls) == 1  # training: the reference
        with torch.no_grad():
            ops.depthwise_conv3x3(x, w.clone().requires_grad_(True), b)
        assert len(calls) == 2
        out = ops.depthwise_conv3x3(x.double(), w.double(), b.double())  # float64: the reference
        assert out.dtype == torch.float64 and len(calls) == 2
    finally:
        torch.ops.anycost.depthwise_conv3x3 = real


def test_opcheck():
    x, w, b = _inputs(2, 3, 5, 7)
    torch.library.opcheck(torch.ops.anycost.depthwise_conv3x3, (x, w, b, True, True, 1e-5))
    torch.library.opcheck(torch.ops.anycost.depthwise_conv3x3, (x[:, 1:], w[1:], None, False, False, 1e-5))


@pytest.mark.parametrize(("x", "w", "b", "reflect", "message"), [
    (torch.randn(1, 3, 4, 4), torch.randn(4, 1, 3, 3), None, True, "weight must be"),
    (torch.randn(1, 3, 4, 4), torch.randn(3, 1, 5, 5), None, True, "weight must be"),
    (torch.randn(1, 3, 4, 4), torch.randn(3, 1, 3, 3), torch.randn(2), True, "bias must be"),
    (torch.randn(1, 3, 1, 4), torch.randn(3, 1, 3, 3), None, True, "at least 2x2"),
    (torch.randn(3, 4, 4), torch.randn(3, 1, 3, 3), None, True, "4 dims"),
    (torch.randn(0, 3, 4, 4), torch.randn(3, 1, 3, 3), None, True, "non-empty"),
    (torch.ones(1, 3, 4, 4, dtype=torch.int32), torch.randn(3, 1, 3, 3), None, True, "floating-point"),
])
def test_bad_inputs_are_clear_errors(x, w, b, reflect, message):
    for impl in ("kernel", "ref"):
        with pytest.raises((ValueError, TypeError), match=message):
            ops.depthwise_conv3x3(x, w, b, reflect=reflect, impl=impl)


# Positions narrower and wider than one tile (3 vectors at avx2, 4 at avx512), a last strip of 1-4 vectors, full or
# partial, output channels at every tile remainder (1-4 rows).
PW_SHAPES = [(1, 8, 16, 8, 8), (2, 5, 7, 3, 9), (1, 1, 1, 1, 2), (1, 32, 13, 17, 33), (3, 16, 6, 16, 16),
             (1, 24, 32, 64, 64), (1, 6, 5, 8, 13)]  # (N, C_in, C_out, H, W)


def _pointwise_inputs(n, c_in, c_out, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(c_out + 2, c_in + 3, 1, 1, generator=g)[:c_out, :c_in]  # a sub-network's slice
    return torch.randn(n, c_in, h, w, generator=g), weight, torch.randn(2 * c_out, generator=g)[::2]


@pytest.mark.parametrize("shape", PW_SHAPES)
@pytest.mark.parametrize(("normalize", "relu"), [(False, False), (True, False), (True, True), (False, True)])
def test_pointwise_matches_reference(cpu_level, shape, normalize, relu):
    x, w, b = _pointwise_inputs(*shape, seed=sum(shape))
    out = ops.pointwise_conv(x, w, b, normalize=normalize, relu=relu, impl="kernel")
    assert out.shape == (shape[0], shape[2], *shape[3:]) and out.is_contiguous()
    _close(out, ref.pointwise_conv(x, w, b, normalize, relu))


@pytest.mark.parametrize("layout", ["channel_slice", "channels_last", "strided_rows"])
def test_pointwise_strided_inputs(cpu_level, layout):
    x, _, _ = _inputs(2, 6, 9, 11, layout=layout)
    _, w, b = _pointwise_inputs(2, 6, 5, 9, 11)
    for normalize in (False, True):
        _close(ops.pointwise_conv(x, w, b, normalize=normalize, relu=True, impl="kernel"),
               ref.pointwise_conv(x.contiguous(), w, b, normalize, True))
    _close(ops.pointwise_conv(x, w, None, impl="kernel"), ref.pointwise_conv(x, w))


def test_pointwise_gradients_come_from_the_reference():
    x, w, b = (t.clone().requires_grad_(True) for t in _pointwise_inputs(2, 3, 4, 5, 6))
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.pointwise_conv(x, w, b, normalize=True, relu=True, impl=impl)
        weights = torch.linspace(-1, 2, out.numel()).reshape(out.shape)
        grads[impl] = torch.autograd.grad((out * weights).sum(), [x, w, b])
    for a, g in zip(grads["kernel"], grads["ref"]):
        _close(a, g)


def test_pointwise_opcheck():
    x, w, b = _pointwise_inputs(2, 3, 5, 4, 7)
    torch.library.opcheck(torch.ops.anycost.pointwise_conv, (x, w, b, True, True, 1e-5))
    torch.library.opcheck(torch.ops.anycost.pointwise_conv, (x[:, 1:], w[:, 1:], None, False, False, 1e-5))


@pytest.mark.parametrize(("x", "w", "b", "message"), [
    (torch.randn(1, 3, 4, 4), torch.randn(5, 4, 1, 1), None, "weight must be"),
    (torch.randn(1, 3, 4, 4), torch.randn(5, 3, 3, 3), None, "weight must be"),
    (torch.randn(1, 3, 4, 4), torch.randn(5, 3, 1, 1), torch.randn(3), "bias must be"),
    (torch.randn(1, 0, 4, 4), torch.randn(5, 0, 1, 1), None, "non-empty"),
    (torch.randn(3, 4, 4), torch.randn(5, 3, 1, 1), None, "4 dims"),
])
def test_pointwise_bad_inputs_are_clear_errors(x, w, b, message):
    for impl in ("kernel", "ref"):
        with pytest.raises((ValueError, TypeError), match=message):
            ops.pointwise_conv(x, w, b, impl=impl)


def test_a_norm_of_one_position_is_refused():
    x, w = torch.randn(2, 3, 1, 1), torch.randn(3, 1, 3, 3)
    for impl in ("kernel", "ref"):
        with pytest.raises(ValueError, match="more than one position"):
            ops.depthwise_conv3x3(x, w, reflect=False, normalize=True, impl=impl)
        with pytest.raises(ValueError, match="more than one position"):
            ops.pointwise_conv(x, torch.randn(4, 3, 1, 1), normalize=True, impl=impl)
    assert ops.pointwise_conv(x, torch.randn(4, 3, 1, 1), relu=True, impl="kernel").shape == (2, 4, 1, 1)
    with pytest.raises(RuntimeError, match="more than one position"):  # the op itself checks too
        torch.ops.anycost.pointwise_conv(x, torch.randn(4, 3, 1, 1), None, True, False, 1e-5)


# small_conv2d: the generators' dense convs (7x7 stem and head, 3x3 stride-2) ----------------------------------------


def _small_inputs(n, c_in, c_out, h, w, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g)
    weight = torch.randn(c_out + 2, c_in + 1, k, k, generator=g)[:c_out, :c_in]  # a sub-network's slice
    bias = torch.randn(2 * c_out, generator=g)[::2]
    return x, weight, bias


# Kernel sizes 1-7, outputs in blocks of 4 or 8 with every tail (1-20 channels), strips of 1-4 vectors (outputs 3-100
# wide), odd sizes, rows whose interior is staged in vectors at both padding parities, stride-2 rows whose masked
# rest is 1 to 2 vectors less one lane (27 and 29 wide).
SMALL_CASES = [(1, 3, 8, 32, 32, 7, 1), (1, 4, 3, 19, 37, 7, 1), (2, 8, 16, 17, 16, 3, 2), (1, 16, 9, 9, 40, 3, 2),
               (1, 5, 7, 9, 33, 5, 1), (2, 2, 1, 3, 3, 1, 1), (1, 3, 6, 8, 8, 3, 2), (1, 1, 2, 8, 5, 7, 2),
               (1, 5, 20, 34, 66, 3, 2), (1, 3, 13, 40, 70, 5, 2), (2, 4, 11, 20, 100, 7, 1), (1, 6, 9, 16, 33, 3, 2),
               (1, 3, 5, 12, 27, 3, 2), (1, 2, 4, 10, 29, 5, 2)]


@pytest.mark.parametrize("case", SMALL_CASES)
@pytest.mark.parametrize(("reflect", "normalize", "relu"), [(True, False, False), (False, True, True),
                                                            (True, True, False), (False, False, True)])
def test_small_conv_matches_reference(cpu_level, case, reflect, normalize, relu):
    n, c_in, c_out, h, w, k, stride = case
    if reflect and k // 2 >= min(h, w):
        pytest.skip("reflection padding needs the image larger than the padding")
    x, weight, bias = _small_inputs(n, c_in, c_out, h, w, k, seed=sum(case))
    out = ops.small_conv2d(x, weight, bias, stride=stride, reflect=reflect, normalize=normalize, relu=relu,
                           impl="kernel")
    want = ref.small_conv2d(x, weight, bias, stride, reflect, normalize, relu)
    assert out.shape == want.shape and out.is_contiguous()
    _close(out, want)


@pytest.mark.parametrize("layout", ["channel_slice", "channels_last", "strided_rows"])
def test_small_conv_strided_inputs(cpu_level, layout):
    x, _, _ = _inputs(2, 4, 9, 11, layout=layout)
    _, weight, bias = _small_inputs(2, 4, 5, 9, 11, 7)
    assert not x.is_contiguous()
    _close(ops.small_conv2d(x, weight, None, impl="kernel"), ref.small_conv2d(x.contiguous(), weight.contiguous()))
    _close(ops.small_conv2d(x, weight[:, :, 1:6:2, 1:6:2], bias, stride=2, reflect=False, impl="kernel"),
           ref.small_conv2d(x.contiguous(), weight[:, :, 1:6:2, 1:6:2].contiguous(), bias, 2, False))


def test_small_conv_gradients_come_from_the_reference():
    x, w, b = (t.clone().requires_grad_(True) for t in _small_inputs(2, 3, 4, 9, 8, 7))
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.small_conv2d(x, w, b, normalize=True, relu=True, impl=impl)
        weights = torch.linspace(-1, 2, out.numel()).reshape(out.shape)
        grads[impl] = torch.autograd.grad((out * weights).sum(), [x, w, b])
    for a, g in zip(grads["kernel"], grads["ref"]):
        _close(a, g)


def test_small_conv_auto_takes_the_kernel_where_it_measured_faster(monkeypatch):
    calls = []
    real = torch.ops.anycost.small_conv2d
    monkeypatch.setattr(torch.ops.anycost, "small_conv2d", lambda *args: calls.append(args) or real(*args))
    x, w7, b = _small_inputs(1, 3, 4, 12, 12, 7)
    ops.small_conv2d(x, w7, b)  # 7x7
    ops.small_conv2d(x, w7[:, :, 2:5, 2:5], b, stride=2)  # stride 2, few input channels
    assert len(calls) == 2
    ops.small_conv2d(x, w7[:, :, 2:5, 2:5], b)  # 3x3 at stride 1: the reference
    wide = torch.randn(4, 32, 3, 3)
    ops.small_conv2d(torch.randn(1, 32, 12, 12), wide, b, stride=2)  # stride 2, 32 input channels: the reference
    ops.small_conv2d(x, w7.clone().requires_grad_(True), b)  # training: the reference
    assert len(calls) == 2
    ops.small_conv2d(x, w7[:, :, 2:5, 2:5], b, impl="kernel")
    assert len(calls) == 3


def test_small_conv_opcheck():
    x, w, b = _small_inputs(2, 3, 5, 9, 10, 7)
    torch.library.opcheck(torch.ops.anycost.small_conv2d, (x, w, b, 1, True, True, True, 1e-5))
    torch.library.opcheck(torch.ops.anycost.small_conv2d, (x, w[:, :, 2:5, 2:5], None, 2, False, False, False, 1e-5))


@pytest.mark.parametrize(("x", "w", "b", "kwargs", "message"), [
    (torch.randn(1, 3, 8, 8), torch.randn(4, 2, 3, 3), None, {}, "weight must be"),
    (torch.randn(1, 3, 8, 8), torch.randn(4, 3, 2, 2), None, {}, "weight must be"),
    (torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 5), None, {}, "weight must be"),
    (torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3), torch.randn(3), {}, "bias must be"),
    (torch.randn(1, 3, 8, 8), torch.randn(4, 3, 3, 3), None, {"stride": 3}, "stride must be 1 or 2"),
    (torch.randn(1, 3, 3, 8), torch.randn(4, 3, 7, 7), None, {}, "reflection padding of 3"),
    (torch.randn(1, 0, 8, 8), torch.randn(4, 0, 3, 3), None, {}, "non-empty"),
    (torch.randn(1, 3, 2, 2), torch.randn(4, 3, 3, 3), None, {"stride": 2, "reflect": False, "normalize": True},
     "more than one position"),
    (torch.randn(3, 8, 8), torch.randn(4, 3, 3, 3), None, {}, "4 dims"),
])
def test_small_conv_bad_inputs_are_clear_errors(x, w, b, kwargs, message):
    for impl in ("kernel", "ref"):
        with pytest.raises((ValueError, TypeError), match=message):
            ops.small_conv2d(x, w, b, impl=impl, **kwargs)


# small_conv_transpose2d: the generators' upsampling convs ---------------------------------------------------------


def _transposed_inputs(n, c_in, c_out, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g)
    weight = torch.randn(c_in + 1, c_out + 2, 3, 3, generator=g)[:c_in, :c_out]  # a sub-network's slice
    bias = torch.randn(2 * c_out, generator=g)[::2]
    return x, weight, bias


# Outputs in blocks of 4 with every tail, input widths around a vector (each gives two outputs), 1x1 inputs.
TRANSPOSED_SHAPES = [(1, 28, 12, 8, 8), (2, 12, 4, 16, 16), (1, 5, 7, 9, 37), (1, 3, 9, 1, 1), (2, 64, 33, 5, 17),
                     (1, 2, 1, 3, 8)]


@pytest.mark.parametrize("shape", TRANSPOSED_SHAPES)
@pytest.mark.parametrize(("normalize", "relu"), [(False, False), (True, True), (True, False), (False, True)])
def test_small_conv_transpose_matches_reference(cpu_level, shape, normalize, relu):
    x, weight, bias = _transposed_inputs(*shape, seed=sum(shape))
    out = ops.small_conv_transpose2d(x, weight, bias, normalize=normalize, relu=relu, impl="kernel")
    want = ref.small_conv_transpose2d(x, weight, bias, normalize, relu)
    assert out.shape == (shape[0], shape[2], 2 * shape[3], 2 * shape[4]) and out.is_contiguous()
    _close(out, want)


@pytest.mark.parametrize("layout", ["channel_slice", "channels_last", "strided_rows"])
def test_small_conv_transpose_strided_inputs(cpu_level, layout):
    x, _, _ = _inputs(2, 6, 9, 11, layout=layout)
    _, weight, bias = _transposed_inputs(2, 6, 5, 9, 11)
    assert not x.is_contiguous() and not weight.is_contiguous()
    _close(ops.small_conv_transpose2d(x, weight, bias, impl="kernel"),
           ref.small_conv_transpose2d(x.contiguous(), weight.contiguous(), bias.contiguous()))


def test_small_conv_transpose_gradients_and_auto_rule(monkeypatch):
    x, w, b = (t.clone().requires_grad_(True) for t in _transposed_inputs(2, 4, 3, 5, 6))
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.small_conv_transpose2d(x, w, b, normalize=True, relu=True, impl=impl)
        weights = torch.linspace(-1, 2, out.numel()).reshape(out.shape)
        grads[impl] = torch.autograd.grad((out * weights).sum(), [x, w, b])
    for a, g in zip(grads["kernel"], grads["ref"]):
        _close(a, g)
    calls = []
    real = torch.ops.anycost.small_conv_transpose2d
    monkeypatch.setattr(torch.ops.anycost, "small_conv_transpose2d", lambda *args: calls.append(args) or real(*args))
    ops.small_conv_transpose2d(x, w, b)  # training: the reference
    assert not calls
    with torch.no_grad():
        ops.small_conv_transpose2d(x, w, b)
    assert len(calls) == 1


def test_small_conv_transpose_opcheck():
    x, w, b = _transposed_inputs(2, 3, 5, 4, 6)
    torch.library.opcheck(torch.ops.anycost.small_conv_transpose2d, (x, w, b, True, True, 1e-5))
    torch.library.opcheck(torch.ops.anycost.small_conv_transpose2d, (x[:, 1:], w[1:], None, False, False, 1e-5))


@pytest.mark.parametrize(("x", "w", "b", "message"), [
    (torch.randn(1, 3, 4, 4), torch.randn(2, 4, 3, 3), None, "weight must be"),
    (torch.randn(1, 3, 4, 4), torch.randn(3, 4, 5, 5), None, "weight must be"),
    (torch.randn(1, 3, 4, 4), torch.randn(3, 4, 3, 3), torch.randn(3), "bias must be"),
    (torch.randn(1, 0, 4, 4), torch.randn(0, 4, 3, 3), None, "non-empty"),
    (torch.randn(3, 4, 4), torch.randn(3, 4, 3, 3), None, "4 dims"),
])
def test_small_conv_transpose_bad_inputs_are_clear_errors(x, w, b, message):
    for impl in ("kernel", "ref"):
        with pytest.raises((ValueError, TypeError), match=message):
            ops.small_conv_transpose2d(x, w, b, impl=impl)


# Bands of rows: the ops split their work into one band of output rows per thread, band-major, and merge the norm's
# per-band moments (the depthwise and pointwise convs where every band is whole pages of page-aligned planes: 64 x 64
# and 32 x 64 planes in outputs the output cache page-aligns). Thread counts that divide the rows and do not, and that
# exceed them (an op then takes one band per row).
def _banded_cases():
    for n, c, h, w in [(2, 5, 64, 64), (1, 8, 32, 64)]:
        dw = _inputs(n, c, h, w, seed=h)
        yield "depthwise", lambda dw=dw: ops.depthwise_conv3x3(*dw, normalize=True, impl="kernel"), \
            lambda dw=dw: ref.depthwise_conv3x3(*dw, True, True)
    dw2 = _inputs(1, 3, 2, 21, seed=2, layout="strided_rows")
    yield "depthwise, planes not whole pages", lambda: ops.depthwise_conv3x3(*dw2, normalize=True, impl="kernel"), \
        lambda: ref.depthwise_conv3x3(*dw2, True, True)
    for shape in [(2, 6, 5, 64, 64), (1, 7, 9, 32, 64)]:
        pw = _pointwise_inputs(*shape, seed=3)
        for relu in (False, True):
            yield f"pointwise relu={relu}", \
                lambda pw=pw, relu=relu: ops.pointwise_conv(*pw, normalize=True, relu=relu, impl="kernel"), \
                lambda pw=pw, relu=relu: ref.pointwise_conv(*pw, True, relu)
    for n, c_in, c_out, h, w, k, stride, reflect in [(1, 3, 5, 11, 19, 7, 1, True), (2, 4, 6, 13, 20, 3, 2, False)]:
        x, weight, bias = _small_inputs(n, c_in, c_out, h, w, k, seed=h)
        yield f"small_conv2d stride {stride}", \
            lambda x=x, weight=weight, bias=bias, stride=stride, reflect=reflect: ops.small_conv2d(
                x, weight, bias, stride=stride, reflect=reflect, normalize=True, relu=True, impl="kernel"), \
            lambda x=x, weight=weight, bias=bias, stride=stride, reflect=reflect: ref.small_conv2d(
                x, weight, bias, stride, reflect, True, True)
    for shape in [(2, 5, 6, 7, 9), (1, 3, 4, 1, 5)]:
        args = _transposed_inputs(*shape, seed=shape[3])
        yield f"small_conv_transpose2d {shape}", \
            lambda args=args: ops.small_conv_transpose2d(*args, normalize=True, relu=True, impl="kernel"), \
            lambda args=args: ref.small_conv_transpose2d(*args, True, True)


@pytest.mark.parametrize("threads", [2, 3, 4, 7])
def test_row_bands_match_the_reference(cpu_level, threads):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name, op, reference in _banded_cases():
            out, want = op(), reference()
            assert out.shape == want.shape, name
            _close(out, want)
    finally:
        torch.set_num_threads(before)

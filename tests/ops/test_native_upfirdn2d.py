"""Native CPU upfirdn2d against the reference op (skipped when anycost._C is not built)."""

import pytest
import torch

from anycost import ops
from anycost.ops import _ext, ref

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _x(batch, c, h, w, layout="contiguous", seed=0):
    g = torch.Generator().manual_seed(seed)
    if layout == "contiguous":
        return torch.randn(batch, c, h, w, generator=g)
    if layout == "channels_last":  # channels-last storage and a sliced channel range
        return torch.randn(batch, h, w, c + 3, generator=g).permute(0, 3, 1, 2)[:, 2 : 2 + c]
    # every other column and a transposed plane: no unit stride anywhere
    return torch.randn(batch, c, 2 * w, h, generator=g).transpose(2, 3)[..., ::2]


def _kernel(kind, seed=1):
    if kind == "blur":
        return ops.fir_kernel(gain=4.0)
    g = torch.Generator().manual_seed(seed)
    shape = {"asym": (3, 5), "row": (1, 4), "one": (1, 1)}[kind]
    return torch.randn(*shape, generator=g)  # asymmetric: catches a missing flip


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-5 * max(1.0, b.abs().max().item()), rtol=1e-5)


@pytest.mark.parametrize("kernel", ["blur", "asym", "row"])
@pytest.mark.parametrize(("up", "down", "pad"), [
    (1, 1, (1, 1, 1, 1)),  # the blur after the transposed conv
    (2, 1, (2, 1, 2, 1)),  # the ToRGB skip upsample
    (1, 2, (1, 1, 1, 1)),  # the discriminator's blur-downsample
    (1, 2, (2, 2)),  # (p0, p1) for both axes
    (2, 2, (0, 3, 1, 2)),
    (1, 1, (-1, -2, 3, 0)),  # negative pads crop
    (2, 1, (-2, 1, 0, -3)),
    (2, 2, (1, -1, -1, 2)),
])
@pytest.mark.parametrize(("batch", "c", "h", "w"), [(1, 3, 4, 4), (4, 5, 9, 7), (1, 2, 13, 40), (4, 1, 1, 2)])
def test_forward_matches_reference(cpu_level, kernel, up, down, pad, batch, c, h, w):
    x, k = _x(batch, c, h, w, seed=h * w), _kernel(kernel)
    full = pad if len(pad) == 4 else (pad[0], pad[1], pad[0], pad[1])
    if h * up + full[2] + full[3] < k.shape[0] or w * up + full[0] + full[1] < k.shape[1]:
        for impl in ("kernel", "ref"):  # tiny input, large crop: no output, the same error for both
            with pytest.raises(ValueError, match="smaller than the kernel"):
                ops.upfirdn2d(x, k, up, down, pad, impl=impl)
        return
    _close(ops.upfirdn2d(x, k, up, down, pad, impl="kernel"), ops.upfirdn2d(x, k, up, down, pad, impl="ref"))


@pytest.mark.parametrize("layout", ["channels_last", "strided"])
@pytest.mark.parametrize(("up", "down", "pad"), [(2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (-1, 2, 0, 1))])
def test_non_contiguous_inputs(cpu_level, layout, up, down, pad):
    x = _x(2, 6, 11, 9, layout=layout)
    assert not x.is_contiguous()
    k = _kernel("asym").t()  # a transposed (non-contiguous) kernel as well
    _close(ops.upfirdn2d(x, k, up, down, pad, impl="kernel"), ops.upfirdn2d(x, k, up, down, pad, impl="ref"))


def test_large_plane_and_single_pixel(cpu_level):
    x = _x(1, 3, 64, 70)
    k = _kernel("blur")
    for up, down, pad in [(2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1))]:
        _close(ops.upfirdn2d(x, k, up, down, pad, impl="kernel"), ops.upfirdn2d(x, k, up, down, pad, impl="ref"))
    one, k1 = _x(1, 1, 1, 1), _kernel("one")
    _close(ops.upfirdn2d(one, k1, impl="kernel"), one * k1)
    _close(ops.upfirdn2d(one, k, up=2, pad=(2, 1), impl="kernel"), ops.upfirdn2d(one, k, up=2, pad=(2, 1), impl="ref"))


def test_gradients_match_reference():
    x = _x(2, 3, 6, 5).requires_grad_(True)
    k = _kernel("asym").requires_grad_(True)
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.upfirdn2d(x, k, up=2, down=1, pad=(2, 1, -1, 2), impl=impl)
        grads[impl] = torch.autograd.grad(out.square().sum(), [x, k])
    for a, b in zip(grads["kernel"], grads["ref"]):
        _close(a, b)


def test_gradcheck_float64_goes_through_reference():
    # The native op is float32 only: float64 resolves to the reference under "auto" (its backward is
    # the one the native op's autograd formula differentiates).
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    assert ops.resolve_impl("auto", x, k, op="upfirdn2d") == "ref"
    torch.autograd.gradcheck(lambda x, k: ops.upfirdn2d(x, k, up=2, down=2, pad=(1, 0, 2, -1)), (x, k))


def test_opcheck():
    x, k = _x(2, 3, 5, 6), _kernel("asym")
    torch.library.opcheck(torch.ops.anycost.upfirdn2d, (x, k, 2, 1, [2, 1, 2, 1]))
    torch.library.opcheck(torch.ops.anycost.upfirdn2d, (x, k, 1, 2, [-1, 2, 0, 1]))


def test_torch_compile_fullgraph():
    x, k = _x(1, 3, 8, 8), _kernel("blur")

    def f(x, k):
        return ops.upfirdn2d(x, k, up=2, pad=(2, 1), impl="kernel") * 2

    compiled = torch.compile(f, fullgraph=True, backend="eager")
    _close(compiled(x, k), f(x, k))


def test_auto_picks_kernel_for_float32_cpu_only():
    x, k = _x(1, 2, 4, 4), _kernel("blur")
    assert ops.resolve_impl("auto", x, k, op="upfirdn2d") == "kernel"
    assert ops.resolve_impl("auto", x.double(), k, op="upfirdn2d") == "ref"
    assert ops.resolve_impl("auto", x, k.double(), op="upfirdn2d") == "ref"
    out = ops.upfirdn2d(x.double(), k.double(), up=2, pad=(2, 1))
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref.upfirdn2d(x.double(), k.double(), up=2, pad=(2, 1)))


@pytest.mark.parametrize(("x", "k", "kwargs", "message"), [
    (torch.randn(0, 2, 4, 4), torch.ones(2, 2), {}, "empty batch"),
    (torch.randn(1, 0, 4, 4), torch.ones(2, 2), {}, "non-empty"),
    (torch.randn(1, 2, 4, 4), torch.ones(0, 2), {}, "non-empty"),
    (torch.randn(1, 2, 4, 4), torch.ones(3, 3), dict(pad=(-2, 0, 0, 0)), "smaller than the kernel"),
    (torch.randn(1, 2, 4, 4), torch.ones(6, 6), {}, "smaller than the kernel"),
    (torch.randn(1, 2, 4, 4), torch.ones(2, 2), dict(up=3), "up and down must be 1 or 2"),
    (torch.randn(1, 2, 4, 4), torch.ones(2, 2), dict(pad=(1, 1, 1)), "pad must be"),
    (torch.randn(2, 4, 4), torch.ones(2, 2), {}, "must have 4 dims"),
])
@pytest.mark.parametrize("impl", ["kernel", "ref"])
def test_bad_inputs_fail_the_same_way_for_every_impl(x, k, kwargs, message, impl):
    with pytest.raises(ValueError, match=message):
        ops.upfirdn2d(x, k, impl=impl, **kwargs)


@pytest.mark.parametrize(("args", "message"), [
    ((torch.randn(1, 2, 4, 4, dtype=torch.float64), torch.ones(2, 2), 1, 1, [0, 0, 0, 0]), "x must be float32"),
    ((torch.randn(1, 2, 4, 4), torch.ones(2, 2, dtype=torch.float64), 1, 1, [0, 0, 0, 0]),
     "kernel must be float32"),
    ((torch.randn(2, 4, 4), torch.ones(2, 2), 1, 1, [0, 0, 0, 0]), "x must have 4 dims"),
    ((torch.randn(1, 2, 4, 4), torch.ones(4), 1, 1, [0, 0, 0, 0]), "kernel must have 2 dims"),
    ((torch.randn(0, 2, 4, 4), torch.ones(2, 2), 1, 1, [0, 0, 0, 0]), "empty batch"),
    ((torch.randn(1, 2, 4, 4), torch.ones(2, 2), 0, 1, [0, 0, 0, 0]), "up and down must be >= 1"),
    ((torch.randn(1, 2, 4, 4), torch.ones(3, 3), 1, 1, [0, 0, -2, 0]), "smaller than the kernel"),
])
def test_native_bad_inputs(args, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ops.anycost.upfirdn2d(*args)


@pytest.mark.parametrize(("shape", "up", "down", "native"), [
    ((1, 3, 64, 64), 2, 1, True),  # the skip upsample: always native
    ((4, 512, 8, 8), 2, 1, True),
    ((1, 64, 32, 32), 1, 1, True),  # planes of >= 32 x 32
    ((1, 256, 16, 16), 1, 2, True),  # small tensor: the reference's fixed cost dominates
    ((4, 512, 8, 8), 1, 2, False),  # many small planes, no upsampling: oneDNN's depthwise conv wins
    ((1, 512, 16, 16), 1, 1, False),
])
def test_auto_shape_rule(monkeypatch, shape, up, down, native):
    calls = []
    monkeypatch.setattr(ref, "upfirdn2d", lambda *a, **k: calls.append(1))
    x, k = torch.randn(*shape), _kernel("blur")
    ops.upfirdn2d(x, k, up, down, (1, 1), impl="auto")
    assert (not calls) == native
    calls.clear()
    ops.upfirdn2d(x, k, up, down, (1, 1), impl="kernel")  # an explicit impl="kernel" is always native
    assert not calls

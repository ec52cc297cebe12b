"""Native CPU bias_act against the reference op (skipped when anycost._C is not built)."""

import math

import pytest
import torch

from anycost import ops
from anycost.ops import _ext, ref

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _x(shape, layout="contiguous", seed=0):
    g = torch.Generator().manual_seed(seed)
    if layout == "contiguous":
        return torch.randn(*shape, generator=g)
    n, c, *rest = shape
    if layout == "channel_slice":  # a slice of a wider tensor along the channels
        return torch.randn(n, c + 5, *rest, generator=g)[:, 3 : 3 + c]
    if layout == "channels_last":  # [N, C, H, W] stored as [N, H, W, C]; [N, C] stored transposed
        return torch.randn(n, *rest, c, generator=g).movedim(-1, 1) if rest else torch.randn(c, n, generator=g).t()
    # [N, C, H, W] with W outermost: the spatial dims do not flatten to one stride (copied by the op)
    return torch.randn(n, c, rest[1], rest[0], generator=g).transpose(2, 3)


def _bias(c, strided=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2 * c, generator=g)[::2] if strided else torch.randn(c, generator=g)


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-6 * max(1.0, b.abs().max().item()), rtol=1e-6)


@pytest.mark.parametrize("act", ["linear", "lrelu"])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("shape", [(1, 512), (4, 37), (1, 7, 5, 3), (4, 16, 9, 11), (4, 3, 64, 64), (1, 5, 1, 1),
                                   (2, 4, 3, 2, 5)])
def test_forward_matches_reference(cpu_level, act, with_bias, shape):
    x = _x(shape, seed=len(shape))
    b = _bias(shape[1]) if with_bias else None
    _close(ops.bias_act(x, b, act, impl="kernel"), ops.bias_act(x, b, act, impl="ref"))


@pytest.mark.parametrize(("act", "alpha", "gain"), [("lrelu", 0.2, None), ("lrelu", 0.05, 1.0), ("lrelu", 0.3, 0.5),
                                                    ("linear", 0.2, None), ("linear", 0.2, 3.0)])
def test_alpha_and_gain_match_reference(cpu_level, act, alpha, gain):
    x, b = _x((3, 9, 4, 5)), _bias(9)
    _close(ops.bias_act(x, b, act, alpha, gain, impl="kernel"), ops.bias_act(x, b, act, alpha, gain, impl="ref"))


def test_default_gain_rule():
    x = _x((2, 6))
    torch.testing.assert_close(torch.ops.anycost.bias_act(x, None, "lrelu", 0.2, None),
                               torch.nn.functional.leaky_relu(x, 0.2) * math.sqrt(2))
    torch.testing.assert_close(torch.ops.anycost.bias_act(x, None, "linear", 0.2, None), x)


@pytest.mark.parametrize("layout", ["channel_slice", "channels_last", "unflattenable"])
@pytest.mark.parametrize("act", ["linear", "lrelu"])
def test_non_contiguous_inputs(cpu_level, layout, act):
    for shape in ((4, 13, 6, 7), (3, 21)) if layout != "unflattenable" else ((4, 13, 6, 7),):
        x = _x(shape, layout=layout)
        assert not x.is_contiguous()
        b = _bias(shape[1], strided=True)
        out = ops.bias_act(x, b, act, impl="kernel")
        _close(out, ops.bias_act(x, b, act, impl="ref"))
        assert out.is_contiguous()


def test_without_channel_dim():
    for x in (torch.randn(10), torch.tensor(-1.5), torch.randn(20)[::3]):
        _close(ops.bias_act(x, None, "lrelu", impl="kernel"), ops.bias_act(x, None, "lrelu", impl="ref"))


def test_empty_input():
    x = torch.randn(0, 5, 3, 3)
    out = ops.bias_act(x, torch.randn(5), "lrelu", impl="kernel")
    assert out.shape == x.shape


@pytest.mark.parametrize("shape", [(3, 10), (2, 4, 5, 3)])
@pytest.mark.parametrize("act", ["linear", "lrelu"])
def test_gradients_match_reference(shape, act):
    x = _x(shape).requires_grad_(True)
    b = _bias(shape[1]).requires_grad_(True)
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.bias_act(x, b, act, impl=impl)
        grads[impl] = torch.autograd.grad((out * torch.linspace(-1, 2, out.numel()).reshape(out.shape)).sum(), [x, b])
    for a, g in zip(grads["kernel"], grads["ref"]):
        _close(a, g)


def test_gradcheck_float64_goes_through_reference():
    # The native op is float32 only: float64 resolves to the reference under "auto".
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert ops.resolve_impl("auto", x, b, op="bias_act") == "ref"
    torch.autograd.gradcheck(lambda x, b: ops.bias_act(x, b, "lrelu", gain=1.3), (x, b))


def test_opcheck():
    x, b = _x((2, 3, 4, 5)), _bias(3)
    torch.library.opcheck(torch.ops.anycost.bias_act, (x, b, "lrelu", 0.2, None))
    torch.library.opcheck(torch.ops.anycost.bias_act, (x[:, :, 1:], None, "linear", 0.2, 2.0))
    torch.library.opcheck(torch.ops.anycost.bias_act, (_x((5, 8)), _bias(8), "lrelu", 0.1, 1.0))


def test_torch_compile_fullgraph():
    x, b = _x((2, 8)), _bias(8)

    def f(x, b):
        return ops.bias_act(x, b, "lrelu", impl="kernel") * 2

    compiled = torch.compile(f, fullgraph=True, backend="eager")
    _close(compiled(x, b), f(x, b))


def test_auto_picks_kernel_for_float32_cpu_only():
    x, b = _x((2, 8)), _bias(8)
    assert ops.resolve_impl("auto", x, b, op="bias_act") == "kernel"
    assert ops.resolve_impl("auto", x, None, op="bias_act") == "kernel"
    assert ops.resolve_impl("auto", x, b.double(), op="bias_act") == "ref"
    out = ops.bias_act(x.double(), b.double(), "lrelu")
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref.bias_act(x.double(), b.double(), "lrelu"))


@pytest.mark.parametrize(("x", "b", "act", "message"), [
    (torch.randn(2, 3), torch.randn(4), "linear", "bias must be"),
    (torch.randn(2, 3), torch.randn(1, 3), "linear", "bias must be"),
    (torch.randn(3), torch.randn(3), "linear", "bias must be"),
    (torch.randn(2, 3), None, "gelu", "unknown activation"),
    (torch.arange(6).reshape(2, 3), None, "linear", "floating-point"),
])
@pytest.mark.parametrize("impl", ["kernel", "ref"])
def test_bad_inputs_fail_the_same_way_for_every_impl(x, b, act, message, impl):
    with pytest.raises((ValueError, TypeError), match=message):
        ops.bias_act(x, b, act, impl=impl)


@pytest.mark.parametrize(("args", "message"), [
    ((torch.randn(2, 3, dtype=torch.float64), None, "linear", 0.2, None), "x must be float32"),
    ((torch.randn(2, 3), torch.randn(3, dtype=torch.float64), "linear", 0.2, None), "bias must be float32"),
    ((torch.randn(2, 3), torch.randn(4), "linear", 0.2, None), "bias has 4 channels, x has 3"),
    ((torch.randn(2, 3), torch.randn(1, 3), "linear", 0.2, None), "bias must have 1 dims"),
    ((torch.randn(3), torch.randn(3), "linear", 0.2, None), "a bias needs x with a channel dim"),
    ((torch.randn(2, 3), None, "relu", 0.2, None), "unknown activation 'relu'"),
])
def test_native_bad_inputs(args, message):
    with pytest.raises(RuntimeError, match=message):
        torch.ops.anycost.bias_act(*args)


@pytest.mark.parametrize(("act", "native"), [("lrelu", True), ("linear", False)])
def test_auto_uses_the_kernel_for_lrelu_only(monkeypatch, act, native):
    # 'linear' is a single broadcast add in the reference, which the native op call does not beat
    calls = []
    monkeypatch.setattr(ref, "bias_act", lambda *a, **k: calls.append(1))
    x, b = _x((2, 8)), _bias(8)
    ops.bias_act(x, b, act, impl="auto")
    assert (not calls) == native
    calls.clear()
    ops.bias_act(x, b, act, impl="kernel")
    assert not calls

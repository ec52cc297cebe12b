"""The image-to-image generator's whole forward in one native call (`anycost.ops.i2i_forward`, which
`I2IGenerator.forward` takes at inference) against the same generator run layer by layer, at every level this CPU
has; when the module takes it; opcheck; bad inputs (skipped when anycost._C is not built)."""

import pytest
import torch

from anycost import ops
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator
from anycost.ops import _ext

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _generator(separable: bool) -> I2IGenerator:
    torch.manual_seed(0)
    G = I2IGenerator(I2IArch.resnet(8, n_blocks=3, separable=separable, image_size=16, step=4)).eval()
    with torch.no_grad():  # weights and biases of every scale (the init's biases are all zero)
        for p in G.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return G


def _configs(G: I2IGenerator):
    return [None, I2IConfig(G.arch, (4, 12, 20, 8, 32, 16, 12, 4)), I2IConfig.uniform(G.arch, 0.5)]


def _close(a, b, tol=1e-5):
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("separable", [True, False])
def test_native_forward_matches_the_layers(cpu_level, separable):
    """The same ops in the same order as the layer-by-layer forward (their kernels, or the reference's conv for a
    dense 3x3 layer): the same output, for full and sub-networks, batches and non-square inputs."""
    G = _generator(separable)
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    for config in _configs(G):
        widths = G._widths(config)
        with torch.no_grad():
            _close(G(x, config=config), G._layers(x, widths, None), tol=1e-6)
        out = G(x, config=config)  # with gradients: the layers, every op by the reference
        assert out.grad_fn is not None
        with torch.no_grad():
            _close(G(x, config=config), out.detach(), tol=2e-4)


def test_the_module_takes_it_only_at_inference(monkeypatch):
    G = _generator(True)
    x = torch.rand(1, 3, 16, 16)
    calls = []
    real = ops.i2i_forward
    monkeypatch.setattr(ops, "i2i_forward", lambda *args: calls.append(1) or real(*args))
    with torch.no_grad():
        G(x)
        G(x, return_features=[1])  # the distillation taps: the layers
    assert len(calls) == 1
    G(x)  # gradients for the parameters: the layers
    G.double()(x.double())  # float64: the layers
    assert len(calls) == 1
    with torch.inference_mode():
        G.float()(x)
    assert len(calls) == 2


def test_the_small_conv_rule_is_the_ops_one(monkeypatch):
    """Which small_conv2d layers run the kernel comes from `ops.small_conv_pays`: with the stride-2 convs sent to
    the reference (as `ops.small_conv2d` then does too) the output is still the layers' one."""
    G = _generator(True)
    x = torch.rand(1, 3, 16, 16)
    widths = G._widths(None)
    assert G._small_native(widths) == [True, True, True, True]
    monkeypatch.setattr(ops, "SMALL_CONV_STRIDED_MAX_C_IN", 0)
    assert G._small_native(widths) == [True, False, False, True]
    with torch.no_grad():
        _close(G(x), G._layers(x, widths, None), tol=1e-6)
    assert _generator(False)._small_native(widths) == [True, False, False] + [False] * 6 + [True]


def _op_args(G: I2IGenerator, x: torch.Tensor):
    widths = list(G._widths(None))
    return [x, [p.detach() for p in G.parameters()], widths, G.arch.separable, G._small_native(widths)]


def test_opcheck():
    for separable in (True, False):
        G = _generator(separable)
        torch.library.opcheck(torch.ops.anycost.i2i_forward, tuple(_op_args(G, torch.rand(1, 3, 8, 12))))


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a[1].pop(), "params has .* the layers need more"),
    (lambda a: a[1].append(torch.zeros(3)), "the layers use"),
    (lambda a: a[4].pop(), "small_native needs"),
    (lambda a: a.__setitem__(2, [8, 8, 8, 8, 8]), "widths needs"),
    (lambda a: a[2].__setitem__(3, 64), "its layer needs 64 along dim 0"),
    (lambda a: a.__setitem__(0, torch.rand(1, 3, 8, 8, dtype=torch.float64)), "float32"),
    (lambda a: a.__setitem__(0, torch.rand(1, 4, 8, 8)), "parameter 0 has shape .* needs 4 along dim 1"),
])
def test_bad_inputs_are_clear_errors(change, message):
    args = _op_args(_generator(True), torch.rand(1, 3, 8, 8))
    change(args)
    with pytest.raises(RuntimeError, match=message):
        ops.i2i_forward(*args)

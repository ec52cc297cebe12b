"""Native CPU modulated_conv2d / to_rgb against the reference ops (skipped when anycost._C is not built)."""

import math

import pytest
import torch

from anycost import ops
from anycost.ops import _ext, ref

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _case(batch, c_in, c_out, size, k=3, full=(48, 40), seed=0, contiguous_x=True):
    g = torch.Generator().manual_seed(seed)
    weight_full = torch.randn(1, full[0], full[1], k, k, generator=g)
    weight = weight_full[0, :c_out, :c_in]  # a strided view of the full weight
    if contiguous_x:
        x = torch.randn(batch, c_in, size, size + 1, generator=g)
    else:  # channels-last storage and a sliced channel range
        x = torch.randn(batch, size, size + 1, c_in + 3, generator=g).permute(0, 3, 1, 2)[:, 2 : 2 + c_in]
    styles = torch.randn(batch, c_in, generator=g) * 0.5 + 1
    return x, weight, styles, 1 / math.sqrt(full[1] * k * k)


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-4 * max(1.0, b.abs().max().item()), rtol=1e-4)


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("demodulate", [False, True])
@pytest.mark.parametrize(("batch", "c_in", "c_out", "size"), [(1, 5, 7, 1), (1, 17, 23, 5), (4, 13, 9, 8),
                                                               (1, 40, 48, 13), (3, 3, 1, 4)])
def test_forward_matches_reference(cpu_level, upsample, demodulate, batch, c_in, c_out, size):
    x, weight, styles, scale = _case(batch, c_in, c_out, size)
    out_hw = (2 * size, 2 * size + 2) if upsample else (size, size + 1)
    noise = torch.randn(batch, 1, *out_hw)
    strength = torch.tensor([0.3])
    bias = torch.randn(c_out)
    for kwargs in (dict(), dict(noise=noise, noise_strength=strength, bias=bias, activate=True), dict(bias=bias)):
        args = dict(weight_scale=scale, demodulate=demodulate, upsample=upsample, **kwargs)
        _close(ops.modulated_conv2d(x, weight, styles, impl="kernel", **args),
               ops.modulated_conv2d(x, weight, styles, impl="ref", **args))


# Many channels at 1-16 px: the kernel's small-image path (style on the input, weight streamed in place,
# demodulation as an output scale; kernels/cpu/modconv_small.h) for the upsampling conv up to 16x16 and the
# plain conv up to 4x4 (8x8 with >= 256 input channels); the other shapes take the blocked path.
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize(("batch", "c_in", "c_out", "size", "contiguous_x"), [
    (1, 512, 512, 4, True), (3, 300, 130, 4, False), (4, 256, 64, 7, True), (1, 96, 40, 16, True),
    (2, 33, 250, 1, False), (1, 257, 3, 2, True)])
def test_low_resolution_many_channels(cpu_level, upsample, batch, c_in, c_out, size, contiguous_x):
    x, weight, styles, scale = _case(batch, c_in, c_out, size, full=(c_out + 5, c_in + 9), seed=c_in,
                                     contiguous_x=contiguous_x)
    out_hw = (2 * size, 2 * size + 2) if upsample else (size, size + 1)
    args = dict(weight_scale=scale, demodulate=True, upsample=upsample, noise=torch.randn(batch, 1, *out_hw),
                noise_strength=torch.tensor([0.3]), bias=torch.randn(c_out), activate=True)
    out = ops.modulated_conv2d(x, weight, styles, impl="kernel", **args)
    _close(out, ops.modulated_conv2d(x, weight, styles, impl="ref", **args))
    for demodulate in (False, True):
        plain = dict(weight_scale=scale, demodulate=demodulate, upsample=upsample)
        _close(ops.modulated_conv2d(x, weight, styles, impl="kernel", **plain),
               ops.modulated_conv2d(x, weight, styles, impl="ref", **plain))
    if batch > 1:  # every sample uses its own style (and demodulation): same as one call per sample
        for n in range(batch):
            one = {k: (v[n : n + 1] if k == "noise" else v) for k, v in args.items()}
            _close(out[n : n + 1], ops.modulated_conv2d(x[n : n + 1], weight, styles[n : n + 1], impl="kernel", **one))


# Plain 3x3 convs take the Winograd paths (kernels/cpu/modconv_winograd.h): F(2x2, 3x3) from 32x32 px with 32+
# channels each side and from 16x16 px with 256+, F(4x4, 3x3) from 64x64 px with 8+ and from 32x32 px with 256+;
# sizes that leave part tiles, batches, strided inputs, every epilogue; the 256+ channel cases have several channel
# blocks, which share one transformed input.
@pytest.mark.parametrize(("batch", "c_in", "c_out", "size", "contiguous_x"), [
    (1, 32, 40, 33, True), (2, 48, 36, 32, False), (1, 64, 64, 45, True), (1, 16, 24, 70, True),
    (2, 8, 12, 64, False), (1, 256, 260, 17, False), (1, 260, 256, 33, True)])
def test_winograd_path_matches_reference(cpu_level, batch, c_in, c_out, size, contiguous_x):
    x, weight, styles, scale = _case(batch, c_in, c_out, size, full=(c_out + 3, c_in + 5), seed=size,
                                     contiguous_x=contiguous_x)
    args = dict(weight_scale=scale, noise=torch.randn(1, 1, size, size + 1), noise_strength=torch.tensor([0.3]),
                bias=torch.randn(c_out), activate=True)
    for demodulate, kwargs in ((True, args), (False, dict(weight_scale=scale))):
        _close(ops.modulated_conv2d(x, weight, styles, impl="kernel", demodulate=demodulate, **kwargs),
               ops.modulated_conv2d(x, weight, styles, impl="ref", demodulate=demodulate, **kwargs))


# The upsampling conv from 512x512 px input with 24+ channels each side (and from 256x256 px with 48+) takes the
# phase Winograd path (kernels/cpu/modconv_winograd_up.h): every epilogue, strided input, without demodulation.
@pytest.mark.parametrize("contiguous_x", [True, False])
def test_upsampling_winograd_path_matches_reference(cpu_level, contiguous_x):
    c_in, c_out, size = 26, 24, 512
    x, weight, styles, scale = _case(1, c_in, c_out, size, full=(c_out + 3, c_in + 5), seed=3,
                                     contiguous_x=contiguous_x)
    args = dict(weight_scale=scale, upsample=True, noise=torch.randn(1, 1, 2 * size, 2 * size + 2),
                noise_strength=torch.tensor([0.3]), bias=torch.randn(c_out), activate=True)
    for demodulate, kwargs in ((True, args), (False, dict(weight_scale=scale, upsample=True))):
        _close(ops.modulated_conv2d(x, weight, styles, impl="kernel", demodulate=demodulate, **kwargs),
               ops.modulated_conv2d(x, weight, styles, impl="ref", demodulate=demodulate, **kwargs))


# The plain Winograd path keeps the transforms of a weight between calls (kernels/cpu/wino_weight_cache.h), named by
# its storage and version counter (csrc/weight_identity.h): an in-place update through torch, of the weight or of a
# view of it, rebuilds them (half the input channels negated: the same demodulation, another conv), a new tensor
# never gets another's, and an inference tensor (no version counter) is not cached.
def test_winograd_weight_cache_follows_updates(cpu_level):
    x, weight, styles, scale = _case(2, 40, 36, 64, full=(48, 44), seed=5)  # F(4x4, 3x3): 64 px, 8+ channels
    args = dict(weight_scale=scale, bias=torch.randn(36), activate=True)

    def check(w):
        out = ops.modulated_conv2d(x, w, styles, impl="kernel", **args)
        _close(out, ops.modulated_conv2d(x, w, styles, impl="ref", **args))
        return out

    ops.clear_winograd_cache()
    first = check(weight)
    assert ops.winograd_cache_bytes() > 0
    with torch.no_grad():
        weight._base[0, :, :40:2].neg_()  # through the full tensor: the view shares its version counter
    assert not torch.allclose(check(weight), first, atol=1e-3)
    with torch.no_grad():
        weight.copy_(torch.randn_like(weight))
    check(weight)
    for seed in range(3):  # new tensors, some perhaps where a freed one was
        check(_case(2, 40, 36, 64, full=(48, 44), seed=10 + seed)[1])
    held = ops.winograd_cache_bytes()
    with torch.inference_mode():
        frozen = torch.randn(36, 40, 3, 3)
    check(frozen)
    assert ops.winograd_cache_bytes() == held
    with torch.inference_mode():
        frozen.neg_()
    check(frozen)
    ops.clear_winograd_cache()
    assert ops.winograd_cache_bytes() == 0


def test_broadcast_noise_and_non_contiguous_input(cpu_level):
    x, weight, styles, scale = _case(2, 11, 6, 6, contiguous_x=False)
    assert not x.is_contiguous()
    noise = torch.randn(1, 1, 12, 14)
    args = dict(weight_scale=scale, upsample=True, noise=noise, noise_strength=torch.tensor([1.5]),
                bias=torch.randn(6), activate=True)
    _close(ops.modulated_conv2d(x, weight, styles, impl="kernel", **args),
           ops.modulated_conv2d(x, weight, styles, impl="ref", **args))


@pytest.mark.parametrize("with_skip", [False, True])
def test_to_rgb_matches_reference(cpu_level, with_skip):
    x, weight, styles, scale = _case(2, 19, 3, 8, k=1, full=(3, 32))
    x = x[..., :8]  # 8 x 8, a non-contiguous view; the skip image is half that size
    bias = torch.randn(3)
    skip = torch.randn(2, 3, 4, 4) if with_skip else None
    _close(ops.to_rgb(x, weight, styles, bias, weight_scale=scale, skip=skip, impl="kernel"),
           ops.to_rgb(x, weight, styles, bias, weight_scale=scale, skip=skip, impl="ref"))


def test_gradients_match_reference():
    x, weight_view, styles, scale = _case(2, 6, 5, 5)
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, weight_view, styles)]
    strength = torch.tensor([0.7], requires_grad=True)
    bias = torch.randn(5, requires_grad=True)
    noise = torch.randn(2, 1, 10, 12)
    grads = {}
    for impl in ("kernel", "ref"):
        out = ops.modulated_conv2d(*leaves, weight_scale=scale, upsample=True, noise=noise, noise_strength=strength,
                                   bias=bias, activate=True, impl=impl)
        grads[impl] = torch.autograd.grad(out.square().sum(), [*leaves, strength, bias])
    for a, b in zip(grads["kernel"], grads["ref"]):
        _close(a, b)


def test_opcheck():
    x, weight, styles, scale = _case(1, 4, 3, 4)
    torch.library.opcheck(torch.ops.anycost.modulated_conv2d,
                          (x, weight, styles, scale, True, True, None, None, torch.randn(3), True))
    rgb_w = torch.randn(3, 4, 1, 1)
    torch.library.opcheck(torch.ops.anycost.to_rgb,
                          (x[..., :4], rgb_w, styles, torch.randn(3), 0.5, torch.randn(1, 3, 2, 2)))


def test_torch_compile_fullgraph():
    x, weight, styles, scale = _case(1, 4, 3, 4)

    def f(x, weight, styles):
        return ops.modulated_conv2d(x, weight, styles, weight_scale=scale, impl="kernel") * 2

    compiled = torch.compile(f, fullgraph=True, backend="eager")
    _close(compiled(x, weight, styles), f(x, weight, styles))


@pytest.mark.parametrize(("args", "message"), [
    (dict(x=torch.randn(1, 3, 5, 5, dtype=torch.float64)), "x must be float32"),
    (dict(weight=torch.randn(2, 3, 2, 2)), "weight must be 1x1 or 3x3"),
])
def test_native_bad_inputs(args, message):
    kw = dict(x=torch.randn(1, 3, 5, 5), weight=torch.randn(2, 3, 3, 3), styles=torch.randn(1, 3))
    kw.update(args)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.anycost.modulated_conv2d(kw["x"], kw["weight"], kw["styles"], 1.0, True, False, None, None, None,
                                           False)


def test_auto_falls_back_to_reference_for_float64():
    x, weight, styles, scale = _case(1, 4, 3, 4)
    assert ops.resolve_impl("auto", x) == "kernel"
    assert ops.resolve_impl("auto", x.double()) == "ref"
    out = ops.modulated_conv2d(x.double(), weight.double(), styles.double(), weight_scale=scale)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref.modulated_conv2d(x.double(), weight.double(), styles.double(),
                                                         weight_scale=scale))

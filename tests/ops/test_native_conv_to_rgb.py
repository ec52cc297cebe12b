"""The fused styled conv + ToRGB (`ops.styled_conv_to_rgb`) against the reference, when the ops fuse, and the
generator with and without fusion (skipped when anycost._C is not built)."""

import math

import pytest
import torch

from anycost import ops
from anycost.ops import _ext, ref

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _inputs(batch, c_in, c_out, height, width, skip=True, seed=0):
    """Arguments of one fused call: the conv's weight a strided view of a larger one, x channels-last, the skip a
    non-contiguous view."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, height, width, c_in, generator=g).permute(0, 3, 1, 2)
    weight = torch.randn(c_out + 3, c_in + 5, 3, 3, generator=g)[:c_out, :c_in]
    rgb_weight = torch.randn(3, c_out + 2, 1, 1, generator=g)[:, :c_out]
    skip_image = torch.randn(batch, 3, height // 2, width // 2 + 1, generator=g)[..., 1:] if skip else None
    return dict(x=x, weight=weight, styles=torch.rand(batch, c_in, generator=g) + 0.5,
                weight_scale=1 / math.sqrt(9 * (c_in + 5)), noise=torch.randn(1, 1, height, width, generator=g),
                noise_strength=torch.tensor([0.3]), bias=torch.randn(c_out, generator=g), rgb_weight=rgb_weight,
                rgb_styles=torch.rand(batch, c_out, generator=g) + 0.5, rgb_bias=torch.randn(3, generator=g),
                rgb_weight_scale=1 / math.sqrt(c_out + 2), skip=skip_image)


def _close(a, b, tol=1e-4):
    torch.testing.assert_close(a, b, atol=tol * max(1.0, b.abs().max().item()), rtol=tol)


@pytest.mark.parametrize(("batch", "c_in", "c_out", "height", "width", "skip"), [
    (1, 5, 7, 4, 6, True),      # direct path, one channel block
    (2, 17, 70, 9, 11, False),  # odd sizes (no skip), several channel blocks: partial sums
    (1, 12, 10, 32, 34, True),  # F(2x2) Winograd
    (1, 9, 8, 64, 66, True),    # F(4x4) Winograd
])
@pytest.mark.parametrize("keep_x", [True, False])
def test_fused_matches_reference(cpu_level, batch, c_in, c_out, height, width, skip, keep_x):
    args = _inputs(batch, c_in, c_out, height, width, skip)
    x, rgb = ops.styled_conv_to_rgb(**args, keep_x=keep_x)
    want_x, want_rgb = ref.styled_conv_to_rgb(**args)
    _close(rgb, want_rgb)
    if keep_x:
        _close(x, want_x)
    else:
        assert x is None


def test_opcheck():
    args = _inputs(1, 4, 5, 6, 8)
    for keep_x in (True, False):
        torch.library.opcheck(torch.ops.anycost.styled_conv_to_rgb, (*args.values(), keep_x),
                              test_utils=("test_schema", "test_faketensor"))


def test_fuses_only_where_it_pays_and_never_for_gradients():
    big, small = _inputs(1, 4, 8, 64, 64), _inputs(1, 4, 128, 64, 64)

    def fuses(args, impl="auto", precision="fp32", keep_x=False):
        return ops.fuses_to_rgb(impl, precision, keep_x, args["x"], args["weight"], args["styles"], args["bias"],
                                args["rgb_weight"])

    assert fuses(big) and fuses(big, keep_x=True)
    assert fuses(small) and not fuses(small, keep_x=True)  # many channels: only when x is not kept
    assert fuses(small, impl="kernel", keep_x=True)
    assert not fuses(_inputs(1, 4, 8, 32, 32))  # below 64 x 64 px
    assert not fuses(big, impl="ref")
    assert fuses(big, precision="bf16")  # a narrow layer of a bf16 render runs in fp32, and fuses as there
    wide = _inputs(1, 16, 32, 8, 8)
    assert not fuses(wide) and fuses(wide, precision="bf16")  # a bf16 layer sums the ToRGB in its epilogue
    big["styles"].requires_grad_(True)
    assert not fuses(big)
    with torch.no_grad():
        assert fuses(big)


@pytest.mark.parametrize(("args", "message"), [
    (dict(rgb_weight=torch.randn(3, 7, 1, 1)), r"rgb_weight must be \[3, 8, 1, 1\]"),
    (dict(rgb_styles=torch.randn(1, 5)), r"rgb_styles must be \[1, 8\]"),
    (dict(x=torch.randn(1, 4, 6, 6).double()), "x must be float32"),
])
def test_bad_inputs(args, message):
    kw = _inputs(1, 4, 8, 6, 6)
    kw.update(args)
    with pytest.raises((ValueError, RuntimeError), match=message):
        ops.styled_conv_to_rgb(**kw)


def test_odd_size_with_skip_is_an_error():
    kw = _inputs(1, 4, 8, 6, 6)
    kw["x"] = torch.randn(1, 4, 7, 6)
    kw["noise"] = None
    with pytest.raises(RuntimeError, match="skip must be"):
        ops.styled_conv_to_rgb(**kw)


@pytest.mark.parametrize(("resolution", "ratio"), [(32, 1.0), (32, 0.5), (16, 1.0)])
def test_generator_fused_equals_separate(tiny_generator, resolution, ratio, monkeypatch):
    G = tiny_generator
    config = G.subnet(resolution, ratio)
    w = G.mapping(torch.randn(2, G.arch.style_dim, generator=torch.Generator().manual_seed(1)))
    called = []
    native = ops.styled_conv_to_rgb
    monkeypatch.setattr(ops, "styled_conv_to_rgb", lambda *a, **k: called.append(k["keep_x"]) or native(*a, **k))
    with torch.inference_mode():
        image, rgbs = G(w, config=config, noise="const", impl="kernel", return_rgbs=True)
        want, want_rgbs = G(w, config=config, noise="const", impl="ref", return_rgbs=True)
    assert called[-1] is False and all(called[:-1]) and len(called) == len(rgbs)  # every pair fused
    _close(image, want)
    for got, ref_rgb in zip(rgbs, want_rgbs):
        _close(got, ref_rgb)


def test_generator_compiles_whole_and_matches(tiny_generator):
    """Under torch.compile the ToRGBs stay separate ops (the rule is read through ctypes) and the graph is whole."""
    G = tiny_generator
    config = G.subnet(32, 1.0)
    w = G.mapping(torch.randn(1, G.arch.style_dim, generator=torch.Generator().manual_seed(2)))
    with torch.inference_mode():
        want = G(w, config=config, noise="const")
        compiled = torch.compile(lambda w: G(w, config=config, noise="const"), fullgraph=True, backend="eager")
        _close(compiled(w), want)

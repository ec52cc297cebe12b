"""modulated_conv2d(precision="bf16") and to_rgb(precision="bf16"): accuracy against a float64 reference within 2x
the error of the reference formulation run in bf16 (DESIGN.md 3) on both routes of the layer (styles folded into the
weight, or into the activations with the prepacked weight), with and without upsampling, odd widths, batch > 1;
the dtypes and layouts the layers pass each other; and the prepacked-weight cache (hits, distinct widths, bound,
invalidation, both the prepacked oneDNN route and the plain ATen fallback)."""

import math

import pytest
import torch

from anycost import ops
from anycost.ops import bf16, ref


@pytest.fixture(params=[True, False], ids=["prepacked", "aten"])
def route(request, monkeypatch):
    """Each test once through the prepacked oneDNN ops and once through the plain ATen bf16 convs (the route
    taken where torch has no oneDNN bf16), with an empty cache."""
    if request.param and not bf16.PREPACK:
        pytest.skip("torch has no oneDNN bf16 convolution on this CPU")
    monkeypatch.setattr(bf16, "PREPACK", request.param)
    monkeypatch.setattr(bf16, "MIN_CHANNELS", 1)  # every layer in bf16, however narrow
    bf16.clear_weight_cache()
    yield request.param
    bf16.clear_weight_cache()


def _case(batch, c_in, c_out, size, upsample, full=(48, 40), seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.nn.Parameter(torch.randn(1, full[0], full[1], 3, 3, generator=g))
    x = torch.randn(batch, c_in, size, size + 1, generator=g)
    styles = torch.randn(batch, c_in, generator=g) * 0.5 + 1
    out_hw = (2 * size, 2 * size + 2) if upsample else (size, size + 1)
    extra = dict(noise=torch.randn(batch, 1, *out_hw, generator=g), noise_strength=torch.tensor([0.3]),
                 bias=torch.randn(c_out, generator=g), activate=True)
    return x, weight, styles, 1 / math.sqrt(full[1] * 9), extra


def _rel_err(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


def _as(dtype, extra):
    return {k: v.to(dtype) if torch.is_tensor(v) else v for k, v in extra.items()}


# (batch, c_in, c_out, size, folds): batch 1 with a weight no larger than the input folds the styles into the weight
SHAPES = [(1, 10, 12, 8, False), (1, 3, 5, 13, True), (1, 7, 9, 11, True), (2, 20, 24, 6, False),
          (3, 5, 7, 9, False), (1, 40, 48, 5, False)]


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize(("batch", "c_in", "c_out", "size", "folded"), SHAPES)
def test_bf16_error_within_twice_the_bf16_reference(route, upsample, batch, c_in, c_out, size, folded):
    x, param, styles, scale, extra = _case(batch, c_in, c_out, size, upsample)
    weight = param[0, :c_out, :c_in]
    assert bf16.folds(x, weight) is folded
    with torch.no_grad():
        exact = ref.modulated_conv2d(x.double(), weight.double(), styles.double(), weight_scale=scale,
                                     upsample=upsample, **_as(torch.float64, extra))
        in_bf16 = ref.modulated_conv2d(x.bfloat16(), weight.bfloat16(), styles.bfloat16(), weight_scale=scale,
                                       upsample=upsample, **_as(torch.bfloat16, extra))
        out = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=upsample, precision="bf16",
                                   **extra)
        from_bf16 = ops.modulated_conv2d(bf16.activations(x), weight, styles, weight_scale=scale, upsample=upsample,
                                         precision="bf16", **extra)
    assert out.dtype == torch.float32 and out.shape == exact.shape and out.is_contiguous()
    # bf16 activations in: bf16 channels_last out, the same values (x is rounded to bf16 either way)
    assert from_bf16.dtype == torch.bfloat16 and from_bf16.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(from_bf16.float(), out, rtol=0, atol=0)
    bound = 2 * _rel_err(in_bf16, exact)
    assert 0 < _rel_err(out, exact) <= bound


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize(("batch", "c_in", "size"), [(1, 12, 8), (3, 37, 6)])
def test_to_rgb_bf16_within_twice_the_bf16_reference(batch, c_in, size, skip):
    g = torch.Generator().manual_seed(batch)
    x, styles = torch.randn(batch, c_in, size, size + 2, generator=g), torch.rand(batch, c_in, generator=g) + 0.5
    weight, bias = torch.randn(3, c_in, 1, 1, generator=g), torch.randn(3, generator=g)
    skip = torch.randn(batch, 3, size // 2, size // 2 + 1, generator=g) if skip else None
    args = (weight, styles, bias)
    with torch.no_grad():
        exact = ref.to_rgb(x.double(), *(t.double() for t in args), weight_scale=0.2,
                           skip=None if skip is None else skip.double())
        in_bf16 = ref.to_rgb(x.bfloat16(), *(t.bfloat16() for t in args), weight_scale=0.2,
                             skip=None if skip is None else skip.bfloat16())
        out = ops.to_rgb(bf16.activations(x), *args, weight_scale=0.2, skip=skip, precision="bf16")
        fp32 = ops.to_rgb(x, *args, weight_scale=0.2, skip=skip)
    assert out.dtype == torch.float32 and out.shape == exact.shape and out.is_contiguous()
    assert 0 < _rel_err(out, exact) <= 2 * _rel_err(in_bf16, exact)
    # float32 activations (of a layer kept in fp32) take the fp32 path whatever the precision
    torch.testing.assert_close(ops.to_rgb(x, *args, weight_scale=0.2, skip=skip, precision="bf16"), fp32)


def test_folds_rule():
    weight = torch.zeros(16, 16, 3, 3)
    assert bf16.folds(torch.zeros(1, 16, 12, 12), weight)  # 16 x 144 input values = 16 x 16 x 9 weights
    assert not bf16.folds(torch.zeros(1, 16, 11, 13), weight)
    assert not bf16.folds(torch.zeros(2, 16, 64, 64), weight)  # batch > 1: the weight is shared


def test_fp32_layer_given_bf16_activations_returns_float32():
    x, param, styles, scale, extra = _case(1, 10, 12, 7, False)
    weight = param[0, :12, :10]
    assert not bf16.pays(10, 12)  # under 16 channels
    xb = bf16.activations(x)
    with torch.no_grad():
        out = ops.modulated_conv2d(xb, weight, styles, weight_scale=scale, precision="bf16", **extra)
        expected = ops.modulated_conv2d(xb.float().contiguous(), weight, styles, weight_scale=scale, **extra)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def test_bf16_without_demodulation_or_extras(route):
    x, param, styles, scale, _ = _case(1, 10, 12, 7, False)
    weight = param[0, :12, :10]
    with torch.no_grad():
        exact = ref.modulated_conv2d(x.double(), weight.double(), styles.double(), weight_scale=scale,
                                     demodulate=False)
        out = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, demodulate=False, precision="bf16")
    assert _rel_err(out, exact) < 1e-2


def _run(param, c_out, c_in, x=None):
    x = torch.randn(1, c_in, 6, 6) if x is None else x
    with torch.no_grad():
        return ops.modulated_conv2d(x, param[0, :c_out, :c_in], torch.ones(1, c_in), weight_scale=0.1,
                                    precision="bf16")


def test_cache_hits_same_width_and_separates_widths(route):
    param = _case(1, 8, 8, 6, False)[1]
    cache = bf16.weight_cache()
    _run(param, 16, 8)
    assert (len(cache), cache.misses, cache.hits) == (1, 1, 0)
    _run(param, 16, 8)
    assert (len(cache), cache.misses, cache.hits) == (1, 1, 1)
    _run(param, 24, 16)
    _run(param, 16, 16)
    assert (len(cache), cache.misses) == (3, 3)
    assert cache.nbytes == sum(c_out * c_in * (9 * 2 + 4) for c_out, c_in in ((16, 8), (24, 16), (16, 16)))


def test_cache_is_bounded_by_bytes(route, monkeypatch):
    cache = bf16.WeightCache(max_bytes=2 * 16 * 16 * (9 * 2 + 4))  # room for two 16x16 entries
    monkeypatch.setattr(bf16, "_CACHE", cache)
    param = _case(1, 8, 8, 6, False)[1]
    first = _run(param, 16, 16, torch.ones(1, 16, 6, 6))
    for c_out in (4, 8, 12, 20):
        _run(param, c_out, 16)
        assert cache.nbytes <= cache.max_bytes
    assert len(cache) == 2 and cache.misses == 5  # the 16x16 entry, least recently used, is gone
    torch.testing.assert_close(_run(param, 16, 16, torch.ones(1, 16, 6, 6)), first)  # rebuilt after eviction
    assert cache.misses == 6
    tiny = bf16.WeightCache(max_bytes=10)  # an entry above the budget is used but never kept
    monkeypatch.setattr(bf16, "_CACHE", tiny)
    _run(param, 16, 16)
    assert len(tiny) == 0 and tiny.nbytes == 0


def test_cache_invalidated_by_in_place_update(route):
    param = _case(1, 8, 8, 6, False)[1]
    x = torch.randn(1, 8, 6, 6)
    before = _run(param, 16, 8, x)
    with torch.no_grad():
        param.mul_(-2.0)  # bumps the version counter, as an optimizer step or load_state_dict does
    after = _run(param, 16, 8, x)
    assert bf16.weight_cache().misses == 2
    with torch.no_grad():
        expected = ops.modulated_conv2d(x, param[0, :16, :8], torch.ones(1, 8), weight_scale=0.1)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, rtol=3e-2, atol=3e-2)


def test_cache_bad_budget_env(monkeypatch):
    monkeypatch.setenv("ANYCOST_BF16_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="ANYCOST_BF16_CACHE_MB"):
        bf16._cache_bytes_from_env()


def test_bad_precision_and_no_gradients(route):
    x, param, styles, scale, _ = _case(1, 8, 8, 6, False)
    with pytest.raises(ValueError, match="precision must be one of"):
        ops.modulated_conv2d(x, param[0, :8, :8], styles, weight_scale=scale, precision="fp16")
    out = ops.modulated_conv2d(x, param[0, :8, :8], styles, weight_scale=scale, precision="bf16")  # grad mode on
    assert param.requires_grad and not out.requires_grad


@pytest.mark.parametrize(("c_in", "c_out", "expected"), [
    (512, 512, True), (128, 64, True), (64, 32, True), (32, 16, True), (16, 16, True), (16, 8, False),
    (8, 8, False)])
def test_narrow_layers_stay_fp32(c_in, c_out, expected):
    assert bf16.pays(c_in, c_out) is expected


@pytest.mark.parametrize("amx,avx512_bf16,expected", [(True, True, "amx"), (False, True, "avx512_bf16"),
                                                        (False, False, "emulated")])
def test_hardware_names_what_bf16_runs_on(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert bf16.hardware() == expected and expected in bf16.HARDWARE


def test_hardware_unknown_without_torch_helpers(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert bf16.hardware() == "unknown"


def test_narrow_layer_runs_the_fp32_path():
    bf16.clear_weight_cache()
    x, param, styles, scale, _ = _case(1, 10, 12, 7, False)
    with torch.no_grad():
        out = ops.modulated_conv2d(x, param[0, :12, :10], styles, weight_scale=scale, precision="bf16")
        fp32 = ops.modulated_conv2d(x, param[0, :12, :10], styles, weight_scale=scale)
    assert len(bf16.weight_cache()) == 0
    torch.testing.assert_close(out, fp32)


@pytest.mark.parametrize("upsample", [False, True])
def test_entry_prepacked_for_one_batch_serves_another(route, upsample):
    x, param, styles, scale, _ = _case(4, 16, 16, 6, upsample)
    weight = param[0, :16, :16]
    with torch.no_grad():
        ops.modulated_conv2d(x[:1], weight, styles[:1], weight_scale=scale, upsample=upsample, precision="bf16")
        reused = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=upsample, precision="bf16")
        bf16.clear_weight_cache()
        fresh = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=upsample, precision="bf16")
    torch.testing.assert_close(reused, fresh)


@pytest.mark.parametrize("keep_x", [True, False])
@pytest.mark.parametrize(("batch", "c_in", "c_out", "size", "skip"), [(1, 10, 12, 8, True), (1, 3, 5, 13, False),
                                                                       (2, 20, 24, 6, True), (1, 40, 17, 5, False)])
def test_styled_conv_to_rgb_bf16_within_twice_the_bf16_reference(route, batch, c_in, c_out, size, skip, keep_x):
    """The conv + ToRGB of a bf16 layer in one epilogue: x as the bf16 layer alone gives it, the RGB within the
    bound, batch > 1, both routes (folded and not), with and without the skip, the ToRGB's output only."""
    if not ops.NATIVE:
        pytest.skip("native ops unavailable")
    x, param, styles, scale, extra = _case(batch, c_in, c_out, size, False)
    x, extra["noise"] = x[..., :size].contiguous(), extra["noise"][..., :size]  # square: an even size takes a skip
    weight = param[0, :c_out, :c_in]
    g = torch.Generator().manual_seed(c_out)
    rgb = dict(rgb_weight=torch.randn(3, c_out, 1, 1, generator=g), rgb_styles=torch.rand(batch, c_out, generator=g),
               rgb_bias=torch.randn(3, generator=g), rgb_weight_scale=0.3)
    skip = torch.randn(batch, 3, size // 2, size // 2, generator=g) if skip else None
    conv = dict(weight_scale=scale, noise=extra["noise"], noise_strength=extra["noise_strength"], bias=extra["bias"])
    assert ops.fuses_to_rgb("auto", "bf16", keep_x, bf16.activations(x), weight, styles)
    with torch.no_grad():
        exact = ref.styled_conv_to_rgb(x.double(), weight.double(), styles.double(), skip=_double(skip),
                                       **_as(torch.float64, conv), **_as(torch.float64, rgb))[1]
        in_bf16 = ref.styled_conv_to_rgb(x.bfloat16(), weight.bfloat16(), styles.bfloat16(),
                                         skip=None if skip is None else skip.bfloat16(), **_as(torch.bfloat16, conv),
                                         **_as(torch.bfloat16, rgb))[1]
        out, out_rgb = ops.styled_conv_to_rgb(bf16.activations(x), weight, styles, skip=skip, keep_x=keep_x,
                                              precision="bf16", **conv, **rgb)
        alone = ops.modulated_conv2d(bf16.activations(x), weight, styles, precision="bf16", activate=True, **conv)
    if keep_x:
        assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(out.float(), alone.float(), rtol=0, atol=0)
    else:
        assert out is None
    assert out_rgb.dtype == torch.float32 and out_rgb.shape == exact.shape and out_rgb.is_contiguous()
    assert 0 < _rel_err(out_rgb, exact) <= 2 * _rel_err(in_bf16, exact)


def _double(t):
    return None if t is None else t.double()


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_output_in_a_cached_block(monkeypatch, upsample, batch):
    """The convs whose output would be a fresh block (`FRESH_BLOCK_BYTES`, here every one) write it into zeros from the
    output cache: the same layer output as torch's own allocation, folded (batch 1) or not, again after the block was
    reused."""
    if not (bf16.PREPACK and ops.NATIVE):
        pytest.skip("needs the native ops and torch's oneDNN bf16 convolution")
    x, param, styles, scale, extra = _case(batch, 16, 24, 9, upsample)
    weight = param[0, :24, :16]

    def run():
        with torch.no_grad():
            return ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=upsample, precision="bf16",
                                        **extra)

    expected = run()
    monkeypatch.setattr(bf16, "FRESH_BLOCK_BYTES", 0)
    for _ in range(2):
        torch.testing.assert_close(run(), expected, rtol=0, atol=0)


def test_folded_upsampling_layer_keeps_its_phase_weight(route):
    """An upsampling layer built for a folded call keeps the fp32 phase weight and scales it per call: the same
    output as building the phase weight from the scaled weight (up to the bf16 rounding of the weights), and a
    layer built for an unfolded call keeps none."""
    x, param, styles, scale, extra = _case(1, 3, 5, 13, True)
    weight = param[0, :5, :3]
    assert bf16.folds(x, weight)
    with torch.no_grad():
        out = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=True, precision="bf16", **extra)
        (entry,) = bf16.weight_cache()._entries.values()
        assert entry.phase is not None and entry.phase.shape == (20, 3, 2, 2)
        bf16.clear_weight_cache()
        wide = _case(1, 40, 48, 5, True)  # a weight larger than the input: the styles scale the activations
        ops.modulated_conv2d(wide[0], wide[1][0, :48, :40], wide[2], weight_scale=wide[3], upsample=True,
                             precision="bf16", **wide[4])
        (unfolded,) = bf16.weight_cache()._entries.values()
        assert unfolded.phase is None
        bf16.clear_weight_cache()
        weight_cache = bf16.weight_cache()
        built = weight_cache.get(weight, scale, True, (2, 3, 13, 14))  # built for batch 2: no phase weight kept
        assert built.phase is None
        rebuilt = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=True, precision="bf16",
                                       **extra)
    torch.testing.assert_close(rebuilt, out, rtol=2**-7, atol=1e-3 * out.abs().max().item())

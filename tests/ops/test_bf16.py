"""modulated_conv2d(precision="bf16"): accuracy against a float64 reference within 2x the error of the reference
formulation run in bf16 (DESIGN.md 3), and the prepacked-weight cache (hits, distinct widths, bound,
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
    monkeypatch.setattr(bf16, "MIN_CHANNELS_UP", 1)
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


@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize(("batch", "c_in", "c_out", "size"), [(1, 10, 12, 8), (2, 20, 24, 6), (1, 40, 48, 5)])
def test_bf16_error_within_twice_the_bf16_reference(route, upsample, batch, c_in, c_out, size):
    x, param, styles, scale, extra = _case(batch, c_in, c_out, size, upsample)
    weight = param[0, :c_out, :c_in]
    with torch.no_grad():
        exact = ref.modulated_conv2d(x.double(), weight.double(), styles.double(), weight_scale=scale,
                                     upsample=upsample, **{k: v.double() if torch.is_tensor(v) else v
                                                           for k, v in extra.items()})
        in_bf16 = ref.modulated_conv2d(x.bfloat16(), weight.bfloat16(), styles.bfloat16(), weight_scale=scale,
                                       upsample=upsample, **{k: v.bfloat16() if torch.is_tensor(v) else v
                                                             for k, v in extra.items()})
        out = ops.modulated_conv2d(x, weight, styles, weight_scale=scale, upsample=upsample, precision="bf16",
                                   **extra)
    assert out.dtype == torch.float32 and out.shape == exact.shape
    bound = 2 * _rel_err(in_bf16, exact)
    assert 0 < _rel_err(out, exact) <= bound


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


@pytest.mark.parametrize(("c_in", "c_out", "upsample", "expected"), [
    (512, 512, True, True), (256, 512, True, True), (128, 256, True, False), (128, 128, False, True),
    (64, 128, False, False), (8, 8, False, False)])
def test_narrow_layers_stay_fp32(c_in, c_out, upsample, expected):
    assert bf16.pays(c_in, c_out, upsample) is expected


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

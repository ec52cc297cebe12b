"""int8: every sub-generator config runs and stays close to fp32, the file round trip, bad input.

Tolerance: on random tiny generators the int8 output is >= 25 dB PSNR from fp32 (images in [-1, 1], peak-to-peak
2); one layer's rounding of weights and activations is ~1e-2 relative (bench/int8_conv.py), and it compounds over
the layers; the bundled model's bound (a trained model, smaller outliers) is 30 dB."""

import pytest
import torch

import anycost
from anycost import ops
from anycost.compression import finetune, int8, kmeans_quantize, prune, quantize_int8
from anycost.compression.generator import build, compressible_keys


def _psnr(a, b) -> float:
    return float(10 * torch.log10(4 / (a - b).square().mean()))


def _layers(G, w, config=None, impl="auto"):
    """G's forward layer by layer (`Generator._layers`, constant noise), which its one native call replaces."""
    widths = (config or G.full_config).widths
    noises = G._noise("const", w.shape[0], len(widths) - 1, None)
    return G._layers(G._styles(w, len(widths), 1.0), noises, widths, impl, "fp32", False)


def _int8_parts(names) -> list[str]:
    return [name for name in names if ".int8." in name]


@pytest.fixture
def latents(tiny_generator):
    with torch.no_grad():
        return tiny_generator.mapping(torch.randn(6, 32, generator=torch.Generator().manual_seed(1)))


@pytest.fixture
def quantized(tiny_generator, latents):
    return quantize_int8(tiny_generator, latents[:4])  # the default rule: every 3x3 styled conv in int8


def test_every_config_runs_int8_close_to_fp32(int8_everywhere, tiny_generator, quantized, latents):
    configs = [tiny_generator.subnet(res, ratio) for res in (8, 16, 32) for ratio in (0.25, 0.5, 1.0)]
    calls = []
    for m in quantized.modules():
        if isinstance(m, int8.Int8StyledConv):
            m.register_forward_hook(lambda mod, inp, out: calls.append(mod.runs_int8(inp[0].shape[1], inp[2],
                                                                                    inp[0].shape[2])))
    with torch.no_grad():
        for config in configs:
            ref = tiny_generator(latents[4:], config=config, noise="const")
            out = quantized(latents[4:], config=config, noise="const")
            assert out.shape == ref.shape and torch.isfinite(out).all()
            assert _psnr(out, ref) > 25, config
    assert calls and all(calls)  # the plain and the upsampling 3x3 convs ran int8


def test_weights_are_int8_per_output_channel_and_slice_exactly(quantized):
    for key in compressible_keys(quantized):
        weight, smooth = quantized.get_parameter(key), quantized.get_submodule(key.removesuffix(".conv.weight")).smooth
        q, scales = int8.quantize_weight(weight, smooth)
        assert q.abs().max() <= 127 and scales.shape == (weight.shape[1],) and smooth.shape == (weight.shape[2],)
        assert (smooth > 0).all() and not torch.equal(smooth, torch.ones_like(smooth))
        torch.testing.assert_close(int8.dequantize_weight(q, scales, smooth), weight, rtol=1e-6, atol=0)
        again = int8.quantize_weight(int8.dequantize_weight(q, scales, smooth), smooth)
        assert torch.equal(again[0], q) and torch.equal(again[1], scales)  # a fixed point: reloads run these


def test_rule_keeps_small_layers_fp32(tiny_generator, latents):
    Gq = quantize_int8(tiny_generator, latents[:2], min_channels=128)  # 64 channels at most: none reaches it
    fp32 = build(Gq.arch, Gq.state_dict(), [], {})  # the same quantised weights, plain StyledConvs
    with torch.no_grad():
        torch.testing.assert_close(Gq(latents[4:], noise="const"), fp32(latents[4:], noise="const"))
    assert not any(m.runs_int8(64, 64, 32) for m in Gq.modules() if isinstance(m, int8.Int8StyledConv))


def test_int8_layers_match_the_integer_reference(int8_everywhere, tiny_generator, quantized, latents, monkeypatch):
    """The native int8 layers compute what the torch integer reference of the op does (`impl="ref"`), each
    resolution's ToRGB summed in the plain conv before it (the last one's output never written)."""
    fused, native_op = [], ops.qconv2d_to_rgb
    monkeypatch.setattr(ops, "qconv2d_to_rgb", lambda *a, **k: fused.append(k["keep_x"]) or native_op(*a, **k))
    with torch.no_grad():
        native = _layers(quantized, latents[4:])
        reference = quantized(latents[4:], noise="const", impl="ref")
    torch.testing.assert_close(native, reference, rtol=1e-4, atol=1e-4)
    resolutions = quantized.arch.resolution.bit_length() - 2  # 4 px, 8 px, ...
    assert fused == [True] * (resolutions - 1) + [False]  # one per resolution, in the native run only


@pytest.mark.skipif(not ops.NATIVE, reason="no native ops: no one-call forward")
@pytest.mark.parametrize("activations", ["dynamic", "calibrated"])
def test_one_native_call_runs_the_int8_convs(int8_everywhere, tiny_generator, latents, monkeypatch, activations):
    """The forward takes the one native call (`ops.synthesis`) with every int8 conv's parts, and it computes what
    the layers do (up to rounding flips from the last bit of a style product: tests/ops/test_native_synthesis.py
    checks the call closely at every level; int8 itself is ~25 dB from fp32), in both activation modes; not while
    calibrating."""
    Gq = quantize_int8(tiny_generator, latents[:4], activations=activations)
    given, native_op = [], ops.synthesis
    monkeypatch.setattr(ops, "synthesis", lambda w, names, *a: given.append(names) or native_op(w, names, *a))
    parts = 5 if activations == "dynamic" else 6  # packed, wsum, scales, square_sums, smooth (, act_scale)
    with torch.no_grad():
        for config in (Gq.full_config, Gq.subnet(16, 0.5), Gq.subnet(8, 1.0), Gq.subnet(32, 0.25)):
            for w in (latents[4:], latents[4:5]):
                native, layers = Gq(w, config=config, noise="const"), _layers(Gq, w, config)
                assert _psnr(native, layers) > 30, config
                assert len(_int8_parts(given[-1])) == parts * (len(config.widths) - 1)  # every conv int8
        small_fp32 = quantize_int8(tiny_generator, latents[:4], activations=activations, min_size=8)
        small_fp32(latents[4:], noise="const")  # the rule holds in the call: conv1 and the 4 -> 8 px conv run fp32
        assert len(_int8_parts(given[-1])) == parts * 5
        for m in Gq.modules():  # while calibrating (observing inputs) the layers run, in fp32
            if isinstance(m, int8.Int8StyledConv):
                m.observing, m.observed = True, torch.zeros(m.conv.weight.shape[2])
        calls = len(given)
        Gq(latents[4:], noise="const")
        assert len(given) == calls


def test_dynamic_scales_follow_each_sample(int8_everywhere, tiny_generator, quantized, latents):
    """A sample whose activations lie far outside the calibrated range: dynamic scales keep it as close to fp32 as
    an ordinary one (relative error of one layer a few 1e-2), a calibrated scale clamps it; the other sample of the
    batch is unaffected by it in both modes (its own scale)."""
    calibrated = quantize_int8(tiny_generator, latents[:4], activations="calibrated")
    name = "convs.1"  # the plain 3x3 conv at 8 px
    fp32, dyn, cal = (G.get_submodule(name) for G in (tiny_generator, quantized, calibrated))
    x = torch.randn(2, dyn.conv.weight.shape[2], 8, 8, generator=torch.Generator().manual_seed(2))
    x[1] *= 40
    c_out, w = dyn.conv.weight.shape[1], latents[4:]
    with torch.no_grad():
        want = fp32(x, w, c_out, None)
        got = {mode: m(x, w, c_out, None) for mode, m in (("dynamic", dyn), ("calibrated", cal))}
        alone = {mode: m(x[:1], w[:1], c_out, None) for mode, m in (("dynamic", dyn), ("calibrated", cal))}

    def rel(a, b):
        return float((a - b).norm() / b.norm())

    assert rel(got["dynamic"][1], want[1]) < 0.05  # (measured 0.026)
    assert rel(got["calibrated"][1], want[1]) > 0.3  # (0.93)
    for mode in got:
        torch.testing.assert_close(got[mode][:1], alone[mode])
        assert rel(got[mode][0], want[0]) < 0.05  # (measured 0.023 dynamic, 0.035 calibrated)


@pytest.mark.parametrize("activations", ["dynamic", "calibrated"])
def test_file_round_trip_stores_int8(tiny_generator, latents, tmp_path, activations):
    quantized = quantize_int8(tiny_generator, latents[:4], activations=activations)
    path = anycost.save_generator(quantized, tmp_path / "g-int8.safetensors")
    loaded = anycost.load_generator(path)
    assert loaded.encodings == quantized.encodings and loaded.steps[-1]["activations"] == activations
    modules = [m for m in loaded.modules() if isinstance(m, anycost.models.stylegan2.layers.StyledConv)]
    assert all(isinstance(m, int8.Int8StyledConv) and m.smooth is not None for m in modules)
    assert all((m.act_scale is None) == (activations == "dynamic") for m in modules)
    state = loaded.state_dict()
    assert all(torch.equal(state[k], v) for k, v in quantized.state_dict().items())  # bit for bit
    with torch.no_grad():
        torch.testing.assert_close(loaded(latents[4:], noise="const"), quantized(latents[4:], noise="const"),
                                   rtol=1e-5, atol=1e-5)
    dense = anycost.compression.save_generator(build(quantized.arch, quantized.state_dict(), [], {}),
                                               tmp_path / "dense.safetensors")
    conv_bytes = sum(quantized.get_parameter(k).numel() for k in compressible_keys(quantized)) * 3
    assert path.stat().st_size < dense.stat().st_size - 0.9 * conv_bytes  # 4 -> 1 byte per conv weight


def test_kmeans_weights_run_int8_and_stay_kmeans_in_the_file(int8_everywhere, tiny_generator, latents, tmp_path):
    Gk = kmeans_quantize(tiny_generator, 4)
    Gkq = quantize_int8(Gk, latents[:4])
    assert [s["method"] for s in Gkq.steps] == ["kmeans", "int8"]
    for key in compressible_keys(Gkq):
        spec = Gkq.encodings[key]
        assert (spec["kind"], spec["bits"], spec["int8"]["act_scale"]) == ("kmeans", 4, None)
        assert torch.equal(Gkq.get_parameter(key), Gk.get_parameter(key))  # the clustered weights, kept
    assert int8.int8_layer_count(Gkq, tiny_generator.full_config) == (7, 7)
    with torch.no_grad():
        for config in (tiny_generator.full_config, tiny_generator.subnet(16, 0.25)):
            want = Gk(latents[4:], config=config, noise="const")
            got = Gkq(latents[4:], config=config, noise="const")
            assert _psnr(got, want) > 25 and not torch.equal(got, want)  # int8 ran, close to the k-means fp32
    path = anycost.save_generator(Gkq, tmp_path / "kq.safetensors")
    int8_only = anycost.save_generator(quantize_int8(tiny_generator, latents[:4]), tmp_path / "q.safetensors")
    conv_weights = sum(Gkq.get_parameter(k).numel() for k in compressible_keys(Gkq))
    assert path.stat().st_size < int8_only.stat().st_size - 0.45 * conv_weights  # 4 bits a weight, not 8
    loaded = anycost.load_generator(path)
    assert loaded.encodings == Gkq.encodings
    with torch.no_grad():
        assert torch.equal(loaded(latents[4:], noise="const"), Gkq(latents[4:], noise="const"))
    with pytest.raises(ValueError, match="already compressed"):
        quantize_int8(Gkq, latents[:2])
    with pytest.raises(ValueError, match="already compressed"):
        kmeans_quantize(Gkq, 4)
    with pytest.raises(ValueError, match="already compressed"):
        quantize_int8(prune(tiny_generator, 0.5), latents[:2])
    with pytest.raises(ValueError, match="cannot be fine-tuned"):
        finetune(Gkq, tiny_generator, 1)


def test_bad_input(tiny_generator, latents):
    with pytest.raises(ValueError, match=r"calibration must be .*\(4, 31\)"):
        quantize_int8(tiny_generator, latents[:4, :31])
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(tiny_generator, latents[:0])
    with pytest.raises(TypeError, match="calibration"):
        quantize_int8(tiny_generator, [[0.0] * 32])
    with pytest.raises(TypeError, match="StyleGAN2 Generator"):
        quantize_int8(torch.nn.Linear(2, 2), latents[:4])
    with pytest.raises(ValueError, match="activations must be one of dynamic, calibrated, got 'static'"):
        quantize_int8(tiny_generator, latents[:4], activations="static")
    with pytest.raises(ValueError, match="already compressed"):
        quantize_int8(quantize_int8(tiny_generator, latents[:2]), latents[:2])


def test_layer_count_says_what_runs_int8(int8_everywhere, tiny_generator, quantized, latents):
    config = tiny_generator.full_config
    assert int8.int8_layer_count(quantized, config) == (7, 7)  # 32 px: conv1 + 2 per scale, all int8
    # min_size 8: not conv1 (4 px) nor the 4 -> 8 px upsampling conv (its input is 4 px)
    assert int8.int8_layer_count(quantize_int8(tiny_generator, latents[:2], min_size=8), config) == (5, 7)
    assert int8.int8_layer_count(quantize_int8(tiny_generator, latents[:2], min_channels=128), config) == (0, 7)


@pytest.mark.skipif(not ops.NATIVE, reason="no native ops: no CPU levels to compare")
def test_plain_convs_run_int8_only_on_levels_with_a_dot_product(tiny_generator, quantized, latents, monkeypatch):
    """impl "auto" runs the plain convs in int8 only where the int8 kernel has a dot product (VNNI), else in fp32
    on the dequantised weights (close to the all-int8 image); "kernel" runs every layer in int8 at any level."""
    config, modules = tiny_generator.full_config, [m for m in quantized.modules() if isinstance(m, int8.Int8StyledConv)]
    levels, native_op, names = ops.cpu_capabilities(), ops.synthesis, []
    monkeypatch.setattr(ops, "synthesis", lambda w, given, *a: names.append(given) or native_op(w, given, *a))
    try:
        for level in levels:
            ops._set_cpu_capability_for_testing(level)
            dot = level in int8.DOT_PRODUCT_LEVELS
            assert int8.int8_layer_count(quantized, config) == ((7, 7) if dot else (3, 7)), level  # 3 upsampling
            assert all(m.runs_int8(16, 16, 8, impl) == (dot or m.upsample or impl != "auto")
                       for m in modules for impl in ("auto", "kernel", "ref"))
            names.clear()
            with torch.no_grad():
                auto, everywhere = (quantized(latents[4:], noise="const", impl=impl) for impl in ("auto", "kernel"))
            # the one native call is given the int8 parts of the convs that run int8 (5 each, dynamic scales)
            assert [len(_int8_parts(n)) for n in names] == [5 * (7 if dot else 3), 5 * 7], level
            if dot:
                torch.testing.assert_close(auto, everywhere, rtol=1e-5, atol=1e-5)
            else:
                assert _psnr(auto, everywhere) > 25
    finally:
        ops._set_cpu_capability_for_testing(None)
    assert "avx2" not in int8.DOT_PRODUCT_LEVELS


def test_calibration_latents_and_chunks(tiny_generator, latents, monkeypatch):
    a, b = int8.calibration_latents(tiny_generator, 10, 3), int8.calibration_latents(tiny_generator, 10, 3)
    assert a.shape == (10, 32) and torch.equal(a, b)
    assert not torch.equal(a, int8.calibration_latents(tiny_generator, 10, 4))
    chunked = quantize_int8(tiny_generator, a, activations="calibrated").encodings
    monkeypatch.setattr(int8, "CALIBRATION_BATCH", 100)  # one forward of all 10: the same maxima
    whole = quantize_int8(tiny_generator, a, activations="calibrated").encodings
    for key, spec in whole.items():
        assert spec["act_scale"] == pytest.approx(chunked[key]["act_scale"], rel=1e-5)
    with pytest.raises(ValueError, match="calibration latents must be an integer >= 1, got 0"):
        int8.calibration_latents(tiny_generator, 0, 0)

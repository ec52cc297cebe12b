"""The StyleGAN2 synthesis network in one native call (`anycost.ops.synthesis`, which `Generator.forward` takes at
fp32 inference) against the same generator run layer by layer, at every level this CPU has; when the module takes
it; opcheck; bad inputs (skipped when anycost._C is not built)."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from anycost import ops
from anycost.benchmark import random_generator
from anycost.compression import int8, quantize_int8
from anycost.models.stylegan2 import GeneratorArch, SubnetConfig
from anycost.models.stylegan2.generator import _synthesis_names
from anycost.models.stylegan2.layers import StyledConv
from anycost.ops import _ext

pytestmark = pytest.mark.skipif(_ext.load() is None, reason=f"native ops unavailable: {_ext.reason()}")


def _generator():
    """A 32 px generator of 8-24 channels with every bias, noise strength and w_avg nonzero."""
    G = random_generator(arch=GeneratorArch(32, channel_multiplier=0.05, channel_max=24, style_dim=16, n_mlp=2))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise.weight"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.3)
        G.w_avg.copy_(torch.randn(G.w_avg.shape, generator=gen))
    return G


def _configs(G):
    return [G.full_config, G.subnet(16, 0.5), G.subnet(8, 1.0),
            SubnetConfig(G.arch, 32, (24, 7, 24, 5, 11, 3, 8, 8))]


def _close(a, b, tol=1e-5):
    torch.testing.assert_close(a, b, atol=tol * max(1.0, b.abs().max().item()), rtol=tol)


def _layers(G, w, config, noise="const", truncation=1.0, impl="kernel", rng=None):
    styles = G._styles(w, len(config.widths), truncation)
    noises = G._noise(noise, styles.shape[0], len(config.widths) - 1, rng)
    return G._layers(styles, noises, config.widths, impl, "fp32", False)


def test_native_forward_matches_the_layers(cpu_level):
    """The same kernels in the same order as the layer-by-layer forward (the style products aside, which the native
    call computes in its own loop): the same image, for full and sub-generators, lower resolutions, batches, W and
    W+ (every entry, or one per layer), truncation."""
    G = _generator()
    torch.manual_seed(2)
    w = torch.randn(2, 16)
    w_plus_full = torch.randn(2, G.arch.n_styles, 16)
    for config in _configs(G):
        w_plus = torch.randn(2, len(config.widths), 16)
        with torch.no_grad():
            for latent in (w, w_plus_full, w_plus, w[:1]):
                _close(G(latent, config=config, noise="const"), _layers(G, latent, config))
            _close(G(w, config=config, noise="const", truncation=0.6), _layers(G, w, config, truncation=0.6))


def test_native_forward_matches_the_reference(cpu_level):
    G = _generator()
    w = torch.randn(2, 16)
    for config in _configs(G):
        with torch.no_grad():
            _close(G(w, config=config, noise="const"), _layers(G, w, config, impl="ref"), tol=1e-4)


def test_every_noise_mode():
    """Random noise (the same draws as the layers make with the same generator), noise tensors of batch 1 (shared)
    and of batch N (one per sample, also non-contiguous ones)."""
    G = _generator()
    config = G.subnet(16, 0.5)
    w = torch.randn(3, 16)
    with torch.no_grad():
        _close(G(w, config=config, rng=torch.Generator().manual_seed(5)),
               _layers(G, w, config, noise="random", rng=torch.Generator().manual_seed(5)))
        for batch in (1, 3):
            noise = [torch.randn(batch, 1, s, 2 * s)[..., ::2] for s in (4, 8, 8, 16, 16)]  # non-contiguous
            _close(G(w, config=config, noise=noise), _layers(G, w, config, noise=noise))


def test_the_module_takes_it_only_at_fp32_inference(monkeypatch):
    G = _generator()
    w = torch.randn(1, 16)
    calls = []
    real = ops.synthesis
    monkeypatch.setattr(ops, "synthesis", lambda *args: calls.append(1) or real(*args))
    with torch.no_grad():
        G(w)
        G(w, impl="kernel")
        assert len(calls) == 2
        G(w, return_rgbs=True)  # the skip image of every scale: the layers
        G(w, impl="ref")
        G(w, precision="bf16")
        assert len(calls) == 2
        monkeypatch.setattr(ops.tuning, "overrides_kernel", lambda precision: True)
        G(w)  # a tuned table picks other backends for some shapes: the layers, each taking its own
        assert len(calls) == 2
        G(w, impl="kernel")
        assert len(calls) == 3
        monkeypatch.setattr(ops.tuning, "overrides_kernel", lambda precision: False)
        G.convs[1].__class__ = type("OtherConv", (StyledConv,), {})  # a subclass may compute otherwise: the layers
        G(w)
        assert len(calls) == 3
    G.convs[1].__class__ = StyledConv
    out = G(w)  # gradients for the parameters: the layers
    assert out.grad_fn is not None and len(calls) == 3
    with torch.inference_mode():
        G(w)
    assert len(calls) == 4
    G.requires_grad_(False)
    G(w)  # no gradient needed
    assert len(calls) == 5
    with FlopCounterMode(display=False) as flops:  # a dispatch mode would see one opaque op: the layers
        G(w)
    assert len(calls) == 5 and flops.get_total_flops() > 0
    seen = []
    hook = G.to_rgbs[0].register_forward_pre_hook(lambda module, args: seen.append(1))  # it expects the calls
    G(w)
    assert len(calls) == 5 and seen == [1]
    hook.remove()
    G(w)
    assert len(calls) == 6
    hook = G.conv1.conv.modulation.register_forward_hook(lambda module, args, out: seen.append(2))
    G(w)
    assert len(calls) == 6 and seen == [1, 2]
    hook.remove()


def _op_args(G, config, batch=1):
    layers = len(config.widths)
    styles = torch.randn(batch, layers, G.arch.style_dim)
    noises = G._noise("const", batch, layers - 1, None)
    return [styles, list(_synthesis_names(layers)), [t.detach() for t in G._synthesis_tensors(noises, layers)],
            list(G.arch.full_widths[:layers]), list(config.widths), config.resolution]


def test_strided_tensors_are_read_as_they_are():
    """A parameter that is a strided view (channels_last, a transposed copy) gives the same image."""
    G = _generator()
    config = G.subnet(16, 0.5)
    w = torch.randn(1, 16)
    with torch.no_grad():
        want = G(w, config=config, noise="const")
        for layer in (G.conv1, G.convs[1]):
            weight = layer.conv.weight
            layer.conv.weight = torch.nn.Parameter(weight[0].contiguous(memory_format=torch.channels_last)[None])
        assert not G.convs[1].conv.weight.is_contiguous()
        _close(G(w, config=config, noise="const"), want)


def _int8_model(G, activations="dynamic"):
    """G quantised to int8 (every 3x3 conv), calibrated on 4 latents."""
    with torch.no_grad():
        calibration = G.mapping(torch.randn(4, 16, generator=torch.Generator().manual_seed(3)))
    return quantize_int8(G, calibration, activations=activations)


def _int8_op_args(Gq, config, batch=1):
    """`_op_args` plus the int8 parts of every conv (as `Generator.forward` gives them at impl "kernel")."""
    args = _op_args(Gq, config, batch)
    names, tensors = Gq._native_conv_tensors(config.widths, "kernel")
    return [args[0], args[1] + list(names), args[2] + list(tensors), *args[3:]]


@pytest.mark.parametrize("activations", ["dynamic", "calibrated"])
def test_int8_convs_match_their_layers(int8_level, monkeypatch, activations):
    """An int8 model's one call (its convs given their int8 parts) against its int8 layers at every level (each
    running every conv int8, as where the plain ones pay): the same image, except where the last bit of a style or
    demodulation product (the call computes them in its own loops, torch in its BLAS) moves an activation across a
    rounding boundary, and the layers after it carry that on. Measured (4 latent draws x levels x modes x configs x
    batch 1 / 2): most cases identical to 2e-6; a flip in a later layer moved 0.4-5% of the pixels (60-69 dB PSNR),
    one in the 4 px conv (one latent at batch 1, calibrated, portable) the whole image by up to 0.16 (37.8 dB, in
    the three configs sharing that conv's width); int8 itself is ~25 dB from fp32. So: every case above 30 dB, and
    at least half of them exact (a wrong part would make none exact)."""
    monkeypatch.setattr(int8, "DOT_PRODUCT_LEVELS", (int8_level,))
    Gq = _int8_model(_generator(), activations)
    calls, native_op = [], ops.synthesis
    monkeypatch.setattr(ops, "synthesis", lambda *args: calls.append(1) or native_op(*args))
    torch.manual_seed(4)
    w = torch.randn(2, 16)
    exact = []
    with torch.no_grad():
        for config in _configs(Gq):
            for latent in (w, w[:1], w[1:]):
                native, layers = Gq(latent, config=config, noise="const"), _layers(Gq, latent, config)
                assert 10 * torch.log10(4 / (native - layers).square().mean()) > 30, config
                exact.append(bool(((native - layers).abs() <= 1e-5).float().mean() > 0.9))
    assert len(calls) == len(exact) == 3 * len(_configs(Gq)) and sum(exact) >= 0.5 * len(exact), exact


def test_opcheck():
    G = _generator()
    for config in (G.full_config, G.subnet(8, 0.5)):
        args = _op_args(G, config, batch=2)
        torch.library.opcheck(torch.ops.anycost.synthesis, (args[0], args[2], args[1], *args[3:]))
    args = _int8_op_args(_int8_model(G), G.subnet(16, 0.5), batch=2)
    torch.library.opcheck(torch.ops.anycost.synthesis, (args[0], args[2], args[1], *args[3:]))


def _replace(args, name, tensor):
    args[2][args[1].index(name)] = tensor


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: (a[1].pop(4), a[2].pop(4)), "no tensor 'conv1.conv.modulation.bias'"),
    (lambda a: a[1].pop(), "tensors but .* names"),
    (lambda a: _replace(a, "conv1.conv.weight", torch.zeros(1, 24, 23, 3, 3)),
     r"'conv1.conv.weight' has shape \[1, 24, 23, 3, 3\], expected \[1, 24, 24, 3, 3\]"),
    (lambda a: _replace(a, "noises.noise_1", torch.zeros(2, 1, 8, 8)), r"'noises.noise_1' has shape .* \(or a batch"),
    (lambda a: _replace(a, "w_avg", torch.zeros(16, dtype=torch.float64)), "w_avg must be float32"),
    (lambda a: a[4].__setitem__(2, 25), r"width of layer 2 \(8 px\) must be in \[1, 24\], got 25"),
    (lambda a: a[4].pop(), "32 px needs 8 layer widths, got 7"),
    (lambda a: a.__setitem__(5, 48), "resolution must be a power of two"),
    (lambda a: a.__setitem__(0, a[0][:, :5]), "W\\+ needs 8 entries, got 5"),
    (lambda a: a.__setitem__(0, a[0].double()), "w must be float32"),
])
def test_bad_inputs_are_clear_errors(change, message):
    G = _generator()
    args = _op_args(G, G.full_config)
    change(args)
    with pytest.raises(RuntimeError, match=message):
        ops.synthesis(*args)


def _drop(args, name):
    i = args[1].index(name)
    args[1].pop(i), args[2].pop(i)


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: _drop(a, "convs.3.int8.wsum"), "'convs.3.int8.wsum' is missing: an int8 conv needs"),
    (lambda a: _replace(a, "convs.3.int8.square_sums", torch.zeros(24, 23)),
     r"'convs.3.int8.square_sums' must be a Float CPU tensor of shape \[24, 24\], got Float \[24, 23\]"),
    (lambda a: _replace(a, "convs.3.int8.packed", torch.zeros(3, 6, 9, 8, 4)), "'convs.3.int8.packed' must be a Char"),
    (lambda a: _replace(a, "convs.3.int8.smooth", torch.ones(25)), r"'convs.3.int8.smooth' must .* \[24\]"),
    (lambda a: _replace(a, "convs.3.int8.act_scale", torch.ones(2)), r"'convs.3.int8.act_scale' must .* \[1\]"),
])
def test_bad_int8_parts_are_clear_errors(change, message):
    Gq = _int8_model(_generator(), "calibrated")
    args = _int8_op_args(Gq, Gq.full_config)
    change(args)
    with pytest.raises(RuntimeError, match=message):
        ops.synthesis(*args)

"""G(w, config=..., precision="bf16"): whole sub-generators against a float64 reference within 2x the error of the
reference path run in bf16 (uniform and odd flexible widths, batch 1 and > 1, all layers bf16 or narrow ones in
fp32 after bf16 ones), two configs from two threads, and the bad-input errors."""

import copy
import threading

import pytest
import torch

from anycost import ops
from anycost.benchmark import random_generator
from anycost.benchmark.backends import backend_codes, layer_backends
from anycost.models.stylegan2 import GeneratorArch
from anycost.ops import bf16

ARCH = GeneratorArch(32, channel_multiplier=0.5, channel_max=64, style_dim=32, n_mlp=2)


@pytest.fixture(scope="module")
def models():
    """The fp32 model, a float64 copy (the reference) and a bf16 copy (the reference path run in bf16)."""
    G = random_generator(arch=ARCH, seed=1)
    return G, copy.deepcopy(G).double(), copy.deepcopy(G).to(torch.bfloat16)


@pytest.fixture(autouse=True)
def all_layers_bf16(monkeypatch):
    """Every layer in bf16, however narrow (`bf16.pays` keeps the tiny model's narrowest in fp32)."""
    monkeypatch.setattr(bf16, "MIN_CHANNELS", 1)


def _rel_err(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


def _check_render(models, config, batch, seed=0):
    G, G64, Gbf = models
    w = torch.randn(batch, ARCH.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        exact = G64(w.double(), config=config, noise="const", impl="ref")
        in_bf16 = Gbf(w.bfloat16(), config=config, noise="const", impl="ref")
        out = G(w, config=config, noise="const", precision="bf16")
    assert out.dtype == torch.float32 and out.shape == exact.shape and out.is_contiguous()
    assert 0 < _rel_err(out, exact) <= 2 * _rel_err(in_bf16, exact)


@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("ratio", [0.25, 0.5, 1.0])
def test_bf16_render_within_twice_the_bf16_reference(models, resolution, ratio):
    _check_render(models, models[0].subnet(resolution=resolution, ratio=ratio), 2, seed=resolution)


@pytest.mark.parametrize("batch", [1, 3])
def test_bf16_flexible_odd_widths(models, batch):
    _check_render(models, models[0].subnet(channels=[63, 45, 33, 17, 31, 9, 11, 5]), batch)


@pytest.mark.parametrize("batch", [1, 3])
def test_bf16_layers_then_fp32_layers(models, monkeypatch, batch):
    """With the threshold between the widths, the wide first layers run bf16 and the narrow last ones fp32 (on a
    float32 copy of the bf16 activations, then float32 on), ToRGB following the activations' dtype."""
    monkeypatch.setattr(bf16, "MIN_CHANNELS", 24)
    config = models[0].subnet(channels=[64, 48, 40, 32, 24, 16, 12, 8])
    taken = layer_backends(models[0], torch.randn(1, ARCH.style_dim), config, "auto", "bf16")
    assert backend_codes(taken) == "bbbb" + ("k" if ops.NATIVE else "r") * 3
    _check_render(models, config, batch)


def test_two_threads_two_configs_match_sequential(models):
    G = models[0]
    w = torch.randn(1, ARCH.style_dim, generator=torch.Generator().manual_seed(0))
    configs = [G.subnet(resolution=32, ratio=0.5), G.subnet(resolution=16, ratio=1.0)]
    with torch.no_grad():
        expected = [G(w, config=c, noise="const", precision="bf16") for c in configs]
    bf16.clear_weight_cache()  # the threads build and share the entries concurrently
    results, errors = {}, []

    def render(i):
        try:
            with torch.no_grad():
                results[i] = [G(w, config=configs[i], noise="const", precision="bf16") for _ in range(5)]
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=render, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, outs in results.items():
        for out in outs:
            torch.testing.assert_close(out, expected[i], rtol=1e-4, atol=1e-4)


def test_bad_precision_and_dtypes(models):
    G, _, Gbf = models
    w = torch.randn(1, ARCH.style_dim)
    with torch.no_grad():
        with pytest.raises(ValueError, match="precision must be one of"):
            G(w, precision="float16")
        with pytest.raises(TypeError, match="w is torch.bfloat16 but the generator is torch.float32"):
            G(w.bfloat16(), precision="bf16")
        with pytest.raises(TypeError, match="w is torch.float32 but the generator is torch.bfloat16"):
            Gbf(w)
    assert G(w, precision="bf16").shape == (1, 3, 32, 32)  # grad mode on: runs, for inference

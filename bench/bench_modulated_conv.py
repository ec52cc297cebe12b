"""Per op: `modulated_conv2d` (3x3, demod, noise, bias, lrelu; plain and 2x upsampling) over the layer
shapes of the config-f 1024 px generator at a few uniform ratios, kernel vs reference."""

import pytest
import torch
from _timing import config_f, record

from anycost import ops
from anycost.models.stylegan2 import layer_resolution
from anycost.models.stylegan2.macs import modconv_macs

RATIOS = (1.0, 0.5, 0.25)


def _layer_cases():
    """(layer index, resolution, c_in, c_out, upsample) of every 3x3 modulated conv, per ratio."""
    from anycost.models.stylegan2 import GeneratorArch

    arch = GeneratorArch(1024, 2)
    cases = []
    for ratio in RATIOS:
        widths = [arch.channels(layer_resolution(i), ratio) for i in range(len(arch.full_widths))]
        cases.append(pytest.param(0, 4, widths[0], widths[1], False, id=f"conv1-4px-r{ratio:g}"))
        for layer in range(2, len(widths)):
            res, up = layer_resolution(layer), layer % 2 == 0
            kind = "up" if up else "conv"
            cases.append(pytest.param(layer, res, widths[layer - 1], widths[layer], up,
                                      id=f"{kind}{layer}-{res}px-{widths[layer - 1]}to{widths[layer]}-r{ratio:g}"))
    return cases


def _rounds(macs: int) -> int:
    return 3 if macs > 5e9 else 7 if macs > 5e8 else 20


def _module(G, layer: int):
    return G.conv1 if layer == 0 else G.convs[layer - 2]


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize(("layer", "res", "c_in", "c_out", "upsample"), _layer_cases())
def test_modulated_conv2d(benchmark, layer, res, c_in, c_out, upsample, impl):
    G = config_f()
    m = _module(G, layer)
    gen = torch.Generator().manual_seed(layer)
    size_in = res // 2 if upsample else res
    x = torch.randn(1, c_in, size_in, size_in, generator=gen)
    styles = torch.randn(1, c_in, generator=gen) * 0.2 + 1
    noise = torch.randn(1, 1, res, res, generator=gen)
    kwargs = dict(weight_scale=m.conv.scale, demodulate=True, upsample=upsample, noise=noise,
                  noise_strength=torch.tensor([0.1]), bias=torch.zeros(c_out), activate=True, impl=impl)
    macs = modconv_macs(c_in, c_out, size_in, upsample)
    benchmark.group = f"modulated_conv2d {'up ' if upsample else ''}{c_in}->{c_out} @ {res}px"
    benchmark.pedantic(ops.modulated_conv2d, args=(x, m.conv.sliced(c_out, c_in), styles), kwargs=kwargs,
                       rounds=_rounds(macs), warmup_rounds=1)
    record(benchmark, macs, kind="op", op="modulated_conv2d", impl=impl, resolution=res, upsample=upsample,
           shape=f"{c_in}->{c_out} @ {size_in}->{res}")

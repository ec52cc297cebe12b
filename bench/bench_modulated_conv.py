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


def _to_rgb_cases():
    """(resolution, channels) of config-f's plain convs that take a ToRGB, from 32 px at ratio 1 and from 256 px at
    ratio 0.25 (where they are the narrowest)."""
    from anycost.models.stylegan2 import GeneratorArch

    arch = GeneratorArch(1024, 2)
    cases = [(res, 1.0) for res in (32, 64, 128, 256, 512, 1024)] + [(res, 0.25) for res in (256, 512, 1024)]
    return [pytest.param(res, arch.channels(res, ratio), id=f"{res}px-{arch.channels(res, ratio)}ch")
            for res, ratio in cases]


@pytest.mark.parametrize("variant", ["separate", "fused", "fused-no-x"])
@pytest.mark.parametrize(("res", "channels"), _to_rgb_cases())
def test_conv_to_rgb(benchmark, res, channels, variant):
    """A plain styled conv and the ToRGB after it: two native ops, `styled_conv_to_rgb` keeping the conv's output,
    and without it (the last layer): the numbers behind `rgb_head_pays` (kernels/cpu/modconv_params.h)."""
    gen = torch.Generator().manual_seed(res)
    x = torch.randn(1, channels, res, res, generator=gen)
    conv = dict(weight=torch.randn(channels, channels, 3, 3, generator=gen), styles=torch.rand(1, channels) + 0.5,
                weight_scale=1 / (3 * channels ** 0.5), noise=torch.randn(1, 1, res, res, generator=gen),
                noise_strength=torch.tensor([0.1]), bias=torch.zeros(channels))
    rgb = dict(rgb_weight=torch.randn(3, channels, 1, 1, generator=gen), rgb_styles=torch.rand(1, channels) + 0.5,
               rgb_bias=torch.zeros(3), rgb_weight_scale=channels ** -0.5,
               skip=torch.randn(1, 3, res // 2, res // 2, generator=gen))

    def separate():
        out = ops.modulated_conv2d(x, conv["weight"], conv["styles"], weight_scale=conv["weight_scale"],
                                   noise=conv["noise"], noise_strength=conv["noise_strength"], bias=conv["bias"],
                                   activate=True, impl="kernel")
        return ops.to_rgb(out, rgb["rgb_weight"], rgb["rgb_styles"], rgb["rgb_bias"],
                          weight_scale=rgb["rgb_weight_scale"], skip=rgb["skip"], impl="kernel")

    def fused():
        return ops.styled_conv_to_rgb(x, **conv, **rgb, keep_x=variant == "fused")

    macs = modconv_macs(channels, channels, res, False) + channels * 3 * res * res
    benchmark.group = f"conv + ToRGB {channels}ch @ {res}px"
    benchmark.pedantic(separate if variant == "separate" else fused, rounds=_rounds(macs), warmup_rounds=1)
    record(benchmark, macs, kind="op", op="styled_conv_to_rgb", impl=variant, resolution=res,
           shape=f"{channels}->{channels}+rgb @ {res}")

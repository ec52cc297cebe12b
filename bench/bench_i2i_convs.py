"""The image-to-image students' fused ops at their layer shapes, kernel vs the reference: `depthwise_conv3x3` with
its instance norm (reference: reflection pad + oneDNN grouped conv + instance norm) and `pointwise_conv` with its
instance norm and ReLU (reference: oneDNN 1x1 conv + instance norm + ReLU), on the trunk of a 32, 64 and 256 px
input (8, 16 and 64 px planes) at the widths the separable blocks take. "MACs" are the conv's. Measured with 1
thread on an AMD EPYC Zen 4 under load (ratios of medians, one process): depthwise 15x at 16 x 8 x 8, 10x at
32 x 16 x 16, 13x at 32 x 64 x 64; pointwise 5.1x, 4.0x and 7.1x. The references pay ~0.1 ms (depthwise) and
~30 us (pointwise) of fixed cost per call, the kernels ~5 us."""

import pytest
import torch
from _timing import record

from anycost import ops

SHAPES = [(1, 16, 8, 8), (1, 32, 16, 16), (1, 32, 64, 64)]


def _id(shape):
    return "x".join(map(str, shape))


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize("shape", SHAPES, ids=_id)
def test_depthwise_conv3x3(benchmark, shape, impl):
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(*shape, generator=g), torch.randn(shape[1], 1, 3, 3, generator=g), torch.randn(shape[1])
    benchmark.group = f"depthwise_conv3x3 + instance norm {_id(shape)}"
    with torch.inference_mode():
        benchmark.pedantic(ops.depthwise_conv3x3, args=(x, w, b), kwargs=dict(normalize=True, impl=impl), rounds=200,
                           warmup_rounds=5)
    record(benchmark, x.numel() * 9, kind="op", op="depthwise_conv3x3", impl=impl, shape=_id(shape))


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize("shape", SHAPES, ids=_id)
def test_pointwise_conv(benchmark, shape, impl):
    g = torch.Generator().manual_seed(0)
    c = shape[1]
    x, w, b = torch.randn(*shape, generator=g), torch.randn(c, c, 1, 1, generator=g), torch.randn(c)
    benchmark.group = f"pointwise_conv + instance norm + ReLU {_id(shape)} -> {c}"
    with torch.inference_mode():
        benchmark.pedantic(ops.pointwise_conv, args=(x, w, b), kwargs=dict(normalize=True, relu=True, impl=impl),
                           rounds=200, warmup_rounds=5)
    record(benchmark, x.numel() * c, kind="op", op="pointwise_conv", impl=impl, shape=_id(shape))

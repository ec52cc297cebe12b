"""`depthwise_conv3x3` (+ the fused instance norm) at the image-to-image students' layer shapes, kernel vs the
reference (reflection pad + oneDNN grouped conv + instance norm): the trunk of a 32, 64 and 256 px input (8, 16 and
64 px planes) at the widths the separable blocks take. "MACs" are the conv's. Measured with 1 thread on an AMD EPYC
Zen 4 under load (ratios of medians, one process): 10x at 16 x 8 x 8, 7x at 32 x 16 x 16, 5x at 32 x 64 x 64; the
reference pays ~0.1 ms of fixed cost per call, the kernel ~5 us."""

import pytest
import torch
from _timing import record

from anycost import ops

SHAPES = [(1, 16, 8, 8), (1, 32, 16, 16), (1, 32, 64, 64)]


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_depthwise_conv3x3(benchmark, shape, impl):
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(*shape, generator=g), torch.randn(shape[1], 1, 3, 3, generator=g), torch.randn(shape[1])
    benchmark.group = f"depthwise_conv3x3 + instance norm {'x'.join(map(str, shape))}"
    with torch.inference_mode():
        benchmark.pedantic(ops.depthwise_conv3x3, args=(x, w, b), kwargs=dict(normalize=True, impl=impl), rounds=200,
                           warmup_rounds=5)
    record(benchmark, x.numel() * 9, kind="op", op="depthwise_conv3x3", impl=impl, shape="x".join(map(str, shape)))

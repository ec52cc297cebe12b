"""Per op: `upfirdn2d` with the [1,3,3,1] FIR at the shapes the models use, kernel vs reference: the ToRGB
skip upsample (3 channels, up 2), the blur after a transposed conv (pad 1) and the discriminator's
blur-downsample (down 2), over config-f widths. MACs count the taps that hit an input sample (up 2
zero insertion skipped). 1 thread, CPU clock, busy machine (`anycost.ops` shape rules come from these):
skip up 2 is 3-12x faster native; blur/down of N x C small planes is 0.6-1.0x at N*C*H*W >= 131k and
H*W <= 256, 1.2-3.7x otherwise."""

import pytest
import torch
from _timing import record

from anycost import ops

CASES = [  # (name, N, C, H, up, down, pad)
    *[("skip-up", 1, 3, h, 2, 1, (2, 1, 2, 1)) for h in (16, 64, 256)],
    *[("blur", 1, c, h, 1, 1, (1, 1, 1, 1)) for c, h in ((512, 8), (512, 16), (256, 32), (128, 64), (64, 128))],
    *[("down", n, c, h, 1, 2, (2, 2, 2, 2)) for n, c, h in ((4, 512, 8), (4, 512, 16), (4, 256, 32), (1, 64, 128))],
]


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize(("name", "n", "c", "h", "up", "down", "pad"), [
    pytest.param(*case, id=f"{case[0]}-{case[1]}x{case[2]}x{case[3]}") for case in CASES])
def test_upfirdn2d(benchmark, name, n, c, h, up, down, pad, impl):
    x = torch.randn(n, c, h, h, generator=torch.Generator().manual_seed(h))
    k = ops.fir_kernel(gain=float(up * up))
    h_out = (h * up + pad[2] + pad[3] - 4) // down + 1
    macs = n * c * h_out * h_out * 16 // (up * up)
    benchmark.group = f"upfirdn2d {name} {n}x{c}x{h}x{h}"
    benchmark.pedantic(ops.upfirdn2d, args=(x, k, up, down, pad), kwargs=dict(impl=impl),
                       rounds=5 if macs > 5e7 else 20, warmup_rounds=1)
    record(benchmark, macs, kind="op", op="upfirdn2d", impl=impl, shape=f"{n}x{c}x{h}x{h} up{up} down{down}")

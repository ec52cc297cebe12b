"""End to end: config-f generator, batch 1, per (resolution, ratio) x impl, plus the fp32 peak.

``make bench BENCH_ARGS='-k generator --benchmark-json out/bench/pytest.json'`` then
``python bench/report.py out/bench/pytest.json`` prints the table (as ``anycost bench`` does).
"""

import pytest
import torch
from _timing import PEAK_SHAPE, config_f, peak_macs, record

from anycost.benchmark import latent
from anycost.models.stylegan2 import SubnetConfig

RESOLUTIONS = (1024, 512, 256, 128)
RATIOS = (1.0, 0.75, 0.5, 0.25)


def _rounds(macs: int) -> int:
    return 3 if macs > 20e9 else 5 if macs > 5e9 else 10


def test_peak_conv2d(benchmark):
    """The machine's practical fp32 peak, measured in the same run (a large dense oneDNN conv)."""
    s = PEAK_SHAPE
    x = torch.randn(s["batch"], s["c_in"], s["size"], s["size"])
    w = torch.randn(s["c_out"], s["c_in"], s["kernel"], s["kernel"]) * 0.01
    benchmark.group = "peak"
    benchmark.pedantic(torch.nn.functional.conv2d, args=(x, w), kwargs={"padding": s["kernel"] // 2},
                       rounds=7, warmup_rounds=2)
    record(benchmark, peak_macs(), kind="peak", impl="oneDNN",
           shape=f"conv2d {s['c_in']}->{s['c_out']} {s['kernel']}x{s['kernel']} at {s['size']}x{s['size']}")


@pytest.mark.parametrize("impl", ["ref", "kernel"])
@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_generator(benchmark, resolution, ratio, impl):
    G = config_f()
    config = SubnetConfig.uniform(G.arch, ratio, resolution)
    w = latent(G)
    benchmark.group = f"generator {resolution}/{ratio:g}"
    benchmark.pedantic(G, args=(w,), kwargs=dict(config=config, noise="const", impl=impl),
                       rounds=_rounds(config.macs), warmup_rounds=1)
    record(benchmark, config.macs, kind="generator", resolution=resolution, ratio=ratio, impl=impl,
           paper_macs=config.paper_macs)

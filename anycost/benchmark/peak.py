"""The machine's practical fp32 (or bf16) peak, measured in the same run as the figures it is compared with: a
large dense conv2d that oneDNN runs near the machine's limit (bf16: channels_last, as `precision="bf16"` runs)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from anycost.benchmark.timing import gflops, time_call

#: The peak probe: a 512 -> 512 3x3 fp32 conv at 64x64, batch 1 (9.66 G MACs).
PEAK_SHAPE = dict(batch=1, c_in=512, c_out=512, size=64, kernel=3)


@dataclass(frozen=True)
class Peak:
    gflops: float
    ms: float
    macs: int
    shape: str


def peak_macs() -> int:
    s = PEAK_SHAPE
    return s["batch"] * s["c_out"] * s["c_in"] * s["kernel"] ** 2 * s["size"] ** 2


def measure_peak(repeats: int = 7, warmup: int = 2, clock: str = "wall", dtype: torch.dtype = torch.float32) -> Peak:
    """Practical peak: GFLOP/s of a large dense conv2d (oneDNN) in `dtype` (float32 NCHW, or bfloat16
    channels_last), in the current thread setting."""
    s = PEAK_SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(s["batch"], s["c_in"], s["size"], s["size"], generator=gen)
    w = torch.randn(s["c_out"], s["c_in"], s["kernel"], s["kernel"], generator=gen) * 0.01
    if dtype != torch.float32:
        x, w = (t.to(dtype, memory_format=torch.channels_last) for t in (x, w))
    with torch.inference_mode():
        t = time_call(lambda: torch.nn.functional.conv2d(x, w, padding=s["kernel"] // 2), repeats, warmup,
                      clock=clock)
    kind = str(dtype).removeprefix("torch.")
    shape = (f"{kind} conv2d {s['c_in']}->{s['c_out']} {s['kernel']}x{s['kernel']} at {s['size']}x{s['size']}, "
             f"batch {s['batch']}")
    return Peak(gflops(peak_macs(), t.median_s), t.median_ms, peak_macs(), shape)

"""End-to-end generator timings: a random config-f generator, batch-1 forwards of every (resolution, ratio)
with every implementation and precision, next to the peaks measured in the same run (`BenchResult`). A timing is
keyed by its impl ("ref", "kernel") in fp32 and by impl + "-bf16" ("kernel-bf16") with `precision="bf16"`."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from anycost.benchmark.peak import Peak, measure_peak
from anycost.benchmark.timing import Timing, gflops, time_call
from anycost.models.stylegan2 import SubnetConfig

IMPLS = ("ref", "kernel")
PRECISIONS = ("fp32", "bf16")
RESULT_KIND = "anycost-bench"
RESULT_VERSION = 1


def random_generator(resolution: int = 1024, channel_multiplier: float = 2, seed: int = 0, *, arch=None):
    """A random-weight generator built without the constructor's mean-w sampling (fast at 1024 px).

    Initialised like the constructor (normal weights, modulation biases 1, other biases and noise
    strengths 0, normal noise buffers); `w_avg` is left at zero, so use truncation 1.
    """
    from anycost.models.stylegan2 import Generator
    from anycost.models.stylegan2.layers import EqualLinear

    with torch.device("meta"):
        G = Generator(resolution, channel_multiplier) if arch is None else Generator(arch=arch)
    G = G.to_empty(device="cpu").eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("modulation.bias"):
                p.fill_(1.0)
            elif name.endswith("bias") or name.endswith("noise.weight"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen))
        for m in G.modules():
            if isinstance(m, EqualLinear):
                m.weight.div_(m.lr_mul)
        for name, b in G.named_buffers():
            b.copy_(torch.randn(b.shape, generator=gen) if name.startswith("noises.") else torch.zeros(b.shape))
    return G


def latent(G, seed: int = 0, batch: int = 1) -> torch.Tensor:
    """`batch` w for timing."""
    z = torch.randn(batch, G.arch.style_dim, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        return G.mapping(z)


def time_forward(G, w: torch.Tensor, config: SubnetConfig, impl: str, repeats: int = 5, warmup: int = 1,
                 budget_s: float | None = None, clock: str = "wall", precision: str = "fp32") -> Timing:
    """Wall time of ``G(w, config=config, noise="const", impl=impl, precision=precision)`` under inference mode."""
    if impl not in IMPLS and impl != "auto":
        raise ValueError(f"impl must be one of {IMPLS + ('auto',)}, got {impl!r}")
    with torch.inference_mode():
        return time_call(lambda: G(w, config=config, noise="const", impl=impl, precision=precision), repeats,
                         warmup, budget_s, clock=clock)


def entry_name(impl: str, precision: str) -> str:
    """The key of a timing in `Row.ms`: the impl in fp32, impl + "-bf16" in bf16."""
    return impl if precision == "fp32" else f"{impl}-{precision}"


# -- end-to-end table --------------------------------------------------------------------------
@dataclass
class Row:
    """One (resolution, ratio) config: its MACs and the median ms of every implementation timed."""

    resolution: int
    ratio: float
    macs: int
    paper_macs: int = 0
    ms: dict[str, float] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)
    min_ms: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.resolution}/{self.ratio:g}"

    def gflops(self, impl: str) -> float | None:
        return gflops(self.macs, self.ms[impl] / 1000) if impl in self.ms else None

    def speedup(self, base: str = "ref", new: str = "kernel") -> float | None:
        """Time of `base` / time of `new` (the kernel's speed-up over the reference by default)."""
        if base in self.ms and new in self.ms:
            return self.ms[base] / self.ms[new]
        return None


@dataclass
class BenchResult:
    rows: list[Row]
    peak: Peak | None = None
    machine: dict = field(default_factory=dict)
    peak_bf16: Peak | None = None  # measured when bf16 is timed

    def to_dict(self) -> dict:
        return {"kind": RESULT_KIND, "version": RESULT_VERSION, "machine": self.machine,
                "peak": asdict(self.peak) if self.peak else None,
                "peak_bf16": asdict(self.peak_bf16) if self.peak_bf16 else None, "rows": [asdict(r) for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> BenchResult:
        if not isinstance(data, dict) or data.get("kind") != RESULT_KIND:
            raise ValueError("not an anycost bench result (kind != 'anycost-bench')")
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"unsupported bench result version {data.get('version')!r}")
        peak = Peak(**data["peak"]) if data.get("peak") else None
        peak_bf16 = Peak(**data["peak_bf16"]) if data.get("peak_bf16") else None  # absent in older files
        return cls([Row(**r) for r in data["rows"]], peak, data.get("machine", {}), peak_bf16)


def machine_info() -> dict:
    from anycost import memory

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "malloc": "retains freed memory" if memory.is_retained() else "default"}


def run_generator_bench(G, resolutions: Sequence[int], ratios: Sequence[float], impls: Sequence[str] = IMPLS,
                        repeats: int = 5, warmup: int = 1, budget_s: float | None = 10.0, peak: bool = True,
                        passes: int = 1, clock: str = "wall", log: Callable[[str], None] | None = None,
                        batch: int = 1, precisions: Sequence[str] = ("fp32",)) -> BenchResult:
    """Time every (resolution, ratio) uniform config with every impl and precision, interleaved per config
    (const noise; MACs are per batch; keys as `entry_name`).

    With `passes` > 1 the whole sweep runs that many times and each entry keeps its lowest median
    (on a shared machine other load only ever slows a pass down). The peak (and the bf16 peak when bf16 is
    timed) is measured before and after every pass and the highest kept; all peak runs and the 1-minute load
    averages go to `machine`.
    """
    for impl in impls:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    configs = [(r, q, SubnetConfig.uniform(G.arch, q, r)) for r in resolutions for q in ratios]  # validates
    result = BenchResult([Row(r, q, batch * c.macs, batch * c.paper_macs) for r, q, c in configs], None,
                         machine_info())
    result.machine.update(loads=[], peak_runs_gflops=[], passes=passes, clock=clock, batch=batch,
                          precisions=list(precisions))
    w = latent(G, batch=batch)

    def probe_peak():
        if peak:
            p = measure_peak(clock=clock)
            result.machine["peak_runs_gflops"].append(round(p.gflops, 1))
            result.peak = max([x for x in (result.peak, p) if x], key=lambda x: x.gflops)
            if "bf16" in precisions:
                pb = measure_peak(clock=clock, dtype=torch.bfloat16)
                result.machine.setdefault("peak_bf16_runs_gflops", []).append(round(pb.gflops, 1))
                result.peak_bf16 = max([x for x in (result.peak_bf16, pb) if x], key=lambda x: x.gflops)
            if log:
                log(f"peak: {p.gflops:.1f} GFLOP/s ({p.shape}, {p.ms:.1f} ms)" + (
                    f"; bf16 {pb.gflops:.1f} GFLOP/s ({pb.ms:.1f} ms)" if "bf16" in precisions else ""))
        result.machine["loads"].append(_loadavg())

    for k in range(passes):
        probe_peak()
        for row, (_, _, config) in zip(result.rows, configs):
            for impl in impls:
                for precision in precisions:
                    name = entry_name(impl, precision)
                    t = time_forward(G, w, config, impl, repeats, warmup, budget_s, clock, precision)
                    if name not in row.ms or t.median_ms < row.ms[name]:
                        row.ms[name], row.repeats[name] = t.median_ms, len(t.times_s)
                        row.min_ms[name] = t.min_s * 1000
                    if log:
                        log(f"pass {k + 1} {row.label:>9} {name:>11}: {t.median_ms:9.2f} ms (median of "
                            f"{len(t.times_s)}, min {t.min_s * 1000:.2f}), load {_loadavg()}")
    probe_peak()
    return result


def _loadavg() -> float | None:
    try:
        return round(float(Path("/proc/loadavg").read_text().split()[0]), 2)
    except (OSError, ValueError, IndexError):
        return None

"""End-to-end generator timings: a random config-f generator, batch-1 forwards of every (resolution, ratio)
with every implementation and precision, next to the peaks measured in the same run (`BenchResult`).

The implementations (`IMPLS`) are ours, `Generator.forward`'s impl ("ref", "kernel", "auto"), and "official": the
official formulation (`anycost.models.stylegan2.official`) run by torch on the same weights at the same config, the
baseline of the speed-ups. A timing is keyed by its impl in fp32 ("kernel") and by impl + "-bf16" ("kernel-bf16")
with `precision="bf16"`; the official formulation has no bf16 form and is timed in fp32 only. For each of our
timings the backend every styled conv took (`backends.layer_backends`) is recorded with it."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from anycost import ops
from anycost.benchmark.backends import layer_backends
from anycost.benchmark.peak import Peak, measure_peak
from anycost.benchmark.timing import Timing, gflops, time_call
from anycost.models.stylegan2 import SubnetConfig, official
from anycost.models.stylegan2.checkpoints import official_state
from anycost.ops import tuning

#: The official formulation first: the baseline every other timing is compared with.
OFFICIAL = "official"
IMPLS = (OFFICIAL, "ref", "kernel", "auto")
#: What `anycost bench` times unless told: the baseline, our reference path and the path users get ("auto": the
#: native kernels, or the backends this machine's tuning table picked).
DEFAULT_IMPLS = (OFFICIAL, "ref", "auto")
PRECISIONS = ("fp32", "bf16")
RESULT_KIND = "anycost-bench"
RESULT_VERSION = 2  # 2: the official formulation, the backends of each timing, the CPU's instruction-set levels
READABLE_VERSIONS = (1, 2)  # a version-1 file is a version-2 one without those


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


def check_entries(impls: Sequence[str], precisions: Sequence[str]) -> None:
    """A ValueError naming the choices for an unknown impl or precision."""
    for impl in impls:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {', '.join(IMPLS)}, got {impl!r}")
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def entries(impls: Sequence[str], precisions: Sequence[str]) -> list[tuple[str, str]]:
    """The (impl, precision) pairs a sweep times, in this order: every impl in every precision, but the official
    formulation in fp32 only."""
    return [(impl, precision) for impl in impls for precision in precisions
            if impl != OFFICIAL or precision == "fp32"]


def forward_call(G, w: torch.Tensor, config: SubnetConfig, impl: str, precision: str = "fp32",
                 official_sd: dict | None = None) -> Callable[[], torch.Tensor]:
    """The forward a timing runs: ``G(w, config=config, noise="const", impl=impl, precision=precision)``, or for
    impl "official" the official formulation in fp32 on `official_sd` (G's weights under the official keys,
    `official_state(G)`: copied here when not given) with the same widths, resolution, const noise and W."""
    check_entries([impl], [precision])
    if impl != OFFICIAL:
        return lambda: G(w, config=config, noise="const", impl=impl, precision=precision)
    if precision != "fp32":
        raise ValueError(f"the official formulation runs in fp32 only, got precision {precision!r}")
    state = official_state(G) if official_sd is None else official_sd
    wplus = w.unsqueeze(1).expand(-1, G.arch.n_styles, -1)  # W as the W+ the official code takes
    widths = list(config.widths)
    return lambda: official.official_forward(state, wplus, "const", widths=widths, resolution=config.resolution)


def time_forward(G, w: torch.Tensor, config: SubnetConfig, impl: str, repeats: int = 5, warmup: int = 1,
                 budget_s: float | None = None, clock: str = "wall", precision: str = "fp32",
                 official_sd: dict | None = None) -> Timing:
    """Time of `forward_call` (our generator with `impl` and `precision`, or the official formulation) under
    inference mode."""
    fn = forward_call(G, w, config, impl, precision, official_sd)
    with torch.inference_mode():
        return time_call(fn, repeats, warmup, budget_s, clock=clock)


def entry_name(impl: str, precision: str) -> str:
    """The key of a timing in `Row.ms`: the impl in fp32, impl + "-bf16" in bf16."""
    return impl if precision == "fp32" else f"{impl}-{precision}"


# -- end-to-end table --------------------------------------------------------------------------
@dataclass
class Row:
    """One (resolution, ratio) config: its MACs, the median ms of every entry timed (`entry_name`) and, for each of
    ours, the backend of every styled conv by layer name (`backends.layer_backends`)."""

    resolution: int
    ratio: float
    macs: int
    paper_macs: int = 0
    ms: dict[str, float] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)
    min_ms: dict[str, float] = field(default_factory=dict)
    backends: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.resolution}/{self.ratio:g}"

    def gflops(self, impl: str) -> float | None:
        return gflops(self.macs, self.ms[impl] / 1000) if impl in self.ms else None

    def speedup(self, base: str = "ref", new: str = "kernel") -> float | None:
        """Time of `base` / time of `new` (the kernel's speed-up over the reference by default); None unless both
        were timed."""
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
        if data.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"unsupported bench result version {data.get('version')!r}")
        peak = Peak(**data["peak"]) if data.get("peak") else None
        peak_bf16 = Peak(**data["peak_bf16"]) if data.get("peak_bf16") else None  # absent in older files
        return cls([Row(**r) for r in data["rows"]], peak, data.get("machine", {}), peak_bf16)


def machine_info() -> dict:
    """What a measurement ran on: torch and its threads, the CPU model, the instruction-set levels it has and the
    one the native kernels run at, the tuning table impl="auto" follows, the allocator's policy."""
    from anycost import memory

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "cpu": ops.cpu_model(), "cpu_levels": list(ops.cpu_capabilities()),
            "cpu_capability": ops.cpu_capability() or "none (no native ops)", "tuning_table": tuning.summary(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "malloc": "retains freed memory" if memory.is_retained() else "default"}


def run_generator_bench(G, resolutions: Sequence[int], ratios: Sequence[float], impls: Sequence[str] = DEFAULT_IMPLS,
                        repeats: int = 5, warmup: int = 1, budget_s: float | None = 10.0, peak: bool = True,
                        passes: int = 1, clock: str = "wall", log: Callable[[str], None] | None = None,
                        batch: int = 1, precisions: Sequence[str] = ("fp32",)) -> BenchResult:
    """Time every (resolution, ratio) uniform config with every impl and precision (`entries`), interleaved per
    config (const noise; MACs are per batch; keys as `entry_name`).

    With `passes` > 1 the whole sweep runs that many times and each entry keeps its lowest median
    (on a shared machine other load only ever slows a pass down). The peak (and the bf16 peak when bf16 is
    timed) is measured before and after every pass and the highest kept; all peak runs and the 1-minute load
    averages go to `machine`. In the first pass one more, untimed forward of each of our entries records the
    backend of every styled conv (`Row.backends`).
    """
    check_entries(impls, precisions)
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    configs = [(q, SubnetConfig.uniform(G.arch, q, r)) for r in resolutions for q in ratios]  # validates
    result = BenchResult([Row(c.resolution, q, batch * c.macs, batch * c.paper_macs) for q, c in configs], None,
                         machine_info())
    result.machine.update(loads=[], core_pair_ns=[], peak_runs_gflops=[], passes=passes, clock=clock, batch=batch,
                          precisions=list(precisions))
    w = latent(G, batch=batch)
    official_sd = official_state(G) if OFFICIAL in impls else None  # one copy of the weights for every config
    for k in range(passes):
        _probe_peaks(result, peak, clock, "bf16" in precisions, log)
        for row, (_, config) in zip(result.rows, configs):
            for impl, precision in entries(impls, precisions):
                name = entry_name(impl, precision)
                if k == 0 and impl != OFFICIAL:
                    row.backends[name] = layer_backends(G, w, config, impl, precision)
                t = time_forward(G, w, config, impl, repeats, warmup, budget_s, clock, precision, official_sd)
                if name not in row.ms or t.median_ms < row.ms[name]:
                    row.ms[name], row.repeats[name] = t.median_ms, len(t.times_s)
                    row.min_ms[name] = t.min_s * 1000
                if log:
                    log(f"pass {k + 1} {row.label:>9} {name:>11}: {t.median_ms:9.2f} ms (median of "
                        f"{len(t.times_s)}, min {t.min_s * 1000:.2f}), load {_loadavg()}")
    _probe_peaks(result, peak, clock, "bf16" in precisions, log)
    return result


def _probe_peaks(result: BenchResult, peak: bool, clock: str, bf16: bool, log) -> None:
    """Measure the fp32 peak (and the bf16 one when `bf16`) when `peak`, keeping the highest of all probes in
    `result`, and note every probe's GFLOP/s, the load average and the threads' placement (`core_pair_ns`) in
    `result.machine`."""
    if peak:
        p = measure_peak(clock=clock)
        result.machine["peak_runs_gflops"].append(round(p.gflops, 1))
        result.peak = max([x for x in (result.peak, p) if x], key=lambda x: x.gflops)
        if bf16:
            pb = measure_peak(clock=clock, dtype=torch.bfloat16)
            result.machine.setdefault("peak_bf16_runs_gflops", []).append(round(pb.gflops, 1))
            result.peak_bf16 = max([x for x in (result.peak_bf16, pb) if x], key=lambda x: x.gflops)
        if log:
            log(f"peak: {p.gflops:.1f} GFLOP/s ({p.shape}, {p.ms:.1f} ms)" + (
                f"; bf16 {pb.gflops:.1f} GFLOP/s ({pb.ms:.1f} ms)" if bf16 else ""))
    result.machine["loads"].append(_loadavg())
    pair = ops.core_pair_ns()
    result.machine["core_pair_ns"].append(None if pair is None else round(pair))


def _loadavg() -> float | None:
    try:
        return round(float(Path("/proc/loadavg").read_text().split()[0]), 2)
    except (OSError, ValueError, IndexError):
        return None

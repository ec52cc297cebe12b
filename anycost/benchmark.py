"""Measuring the generator: one timing helper, the machine's fp32 conv peak, end-to-end tables.

Everything that times something lives here (``anycost bench``, ``anycost demo`` and the
pytest-benchmark files in ``bench/`` all use it). Throughput is always GFLOP/s = 2 x true MACs /
time (`SubnetConfig.macs`, see `anycost.macs`), and every figure is also given as a fraction of the
peak measured in the same run: a large fp32 convolution that oneDNN runs near the machine's limit.
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from anycost.config import SubnetConfig

IMPLS = ("ref", "kernel")
RESULT_KIND = "anycost-bench"
RESULT_VERSION = 1
#: Clocks: wall time, or this process's CPU time (with 1 thread on a busy machine, CPU time is the
#: work done by the measured code alone: other processes only delay it, they do not add to it).
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
#: The peak probe: a 512 -> 512 3x3 fp32 conv at 64x64, batch 1 (9.66 G MACs).
PEAK_SHAPE = dict(batch=1, c_in=512, c_out=512, size=64, kernel=3)


# -- timing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timing:
    """Wall times (seconds) of the timed calls of one measurement (warm-up calls excluded)."""

    times_s: tuple[float, ...]

    def __post_init__(self):
        if not self.times_s:
            raise ValueError("a Timing needs at least one time")

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def median_ms(self) -> float:
        return self.median_s * 1000

    @property
    def min_s(self) -> float:
        return min(self.times_s)


def time_call(fn: Callable[[], object], repeats: int = 5, warmup: int = 1, budget_s: float | None = None,
              min_repeats: int = 3, clock: str = "wall") -> Timing:
    """Call `fn` `warmup` times untimed, then up to `repeats` times timed with `clock` (see `CLOCKS`).

    With `budget_s`, timed calls stop early once their total passes it, but never before
    `min(min_repeats, repeats)` of them: slow configs get fewer repeats, not a shaky median.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {tuple(CLOCKS)}, got {clock!r}")
    now = CLOCKS[clock]
    for _ in range(warmup):
        fn()
    times: list[float] = []
    for _ in range(repeats):
        start = now()
        fn()
        times.append(now() - start)
        if budget_s is not None and len(times) >= min(min_repeats, repeats) and sum(times) >= budget_s:
            break
    return Timing(tuple(times))


def gflops(macs: float, seconds: float) -> float:
    """GFLOP/s of `macs` multiply-accumulates done in `seconds` (one MAC = 2 FLOPs)."""
    if macs < 0:
        raise ValueError(f"macs must be >= 0, got {macs}")
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    return 2 * macs / seconds / 1e9


@contextlib.contextmanager
def num_threads(n: int | None):
    """Run the block with `torch.set_num_threads(n)` (None: leave it), restoring it afterwards."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# -- the machine's peak ------------------------------------------------------------------------
@dataclass(frozen=True)
class Peak:
    gflops: float
    ms: float
    macs: int
    shape: str


def peak_macs() -> int:
    s = PEAK_SHAPE
    return s["batch"] * s["c_out"] * s["c_in"] * s["kernel"] ** 2 * s["size"] ** 2


def measure_peak(repeats: int = 7, warmup: int = 2, clock: str = "wall") -> Peak:
    """Practical fp32 peak: GFLOP/s of a large dense conv2d (oneDNN), in the current thread setting."""
    s = PEAK_SHAPE
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(s["batch"], s["c_in"], s["size"], s["size"], generator=gen)
    w = torch.randn(s["c_out"], s["c_in"], s["kernel"], s["kernel"], generator=gen) * 0.01
    with torch.inference_mode():
        t = time_call(lambda: torch.nn.functional.conv2d(x, w, padding=s["kernel"] // 2), repeats, warmup,
                      clock=clock)
    shape = (f"conv2d {s['c_in']}->{s['c_out']} {s['kernel']}x{s['kernel']} at {s['size']}x{s['size']}, "
             f"batch {s['batch']}")
    return Peak(gflops(peak_macs(), t.median_s), t.median_ms, peak_macs(), shape)


# -- models ------------------------------------------------------------------------------------
def random_generator(resolution: int = 1024, channel_multiplier: float = 2, seed: int = 0, *, arch=None):
    """A random-weight generator built without the constructor's mean-w sampling (fast at 1024 px).

    Initialised like the constructor (normal weights, modulation biases 1, other biases and noise
    strengths 0, normal noise buffers); `w_avg` is left at zero, so use truncation 1.
    """
    from anycost.models import Generator
    from anycost.models.layers import EqualLinear

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
                 budget_s: float | None = None, clock: str = "wall") -> Timing:
    """Wall time of ``G(w, config=config, noise="const", impl=impl)`` under inference mode."""
    if impl not in IMPLS and impl != "auto":
        raise ValueError(f"impl must be one of {IMPLS + ('auto',)}, got {impl!r}")
    with torch.inference_mode():
        return time_call(lambda: G(w, config=config, noise="const", impl=impl), repeats, warmup, budget_s,
                         clock=clock)


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

    def speedup(self) -> float | None:
        if "ref" in self.ms and "kernel" in self.ms:
            return self.ms["ref"] / self.ms["kernel"]
        return None


@dataclass
class BenchResult:
    rows: list[Row]
    peak: Peak | None = None
    machine: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": RESULT_KIND, "version": RESULT_VERSION, "machine": self.machine,
                "peak": asdict(self.peak) if self.peak else None, "rows": [asdict(r) for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> BenchResult:
        if not isinstance(data, dict) or data.get("kind") != RESULT_KIND:
            raise ValueError("not an anycost bench result (kind != 'anycost-bench')")
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"unsupported bench result version {data.get('version')!r}")
        peak = Peak(**data["peak"]) if data.get("peak") else None
        return cls([Row(**r) for r in data["rows"]], peak, data.get("machine", {}))


def machine_info() -> dict:
    from anycost import memory

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "malloc": "retains freed memory" if memory.is_retained() else "default"}


def parse_list(text: str, kind: type) -> list:
    """'1024,512' -> [1024, 512] (ints or floats), with a clear error."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"bad list {text!r}: use comma-separated {kind.__name__}s") from None
    if not values:
        raise ValueError("empty list")
    return values


def run_generator_bench(G, resolutions: Sequence[int], ratios: Sequence[float], impls: Sequence[str] = IMPLS,
                        repeats: int = 5, warmup: int = 1, budget_s: float | None = 10.0, peak: bool = True,
                        passes: int = 1, clock: str = "wall", log: Callable[[str], None] | None = None,
                        batch: int = 1) -> BenchResult:
    """Time every (resolution, ratio) uniform config with every impl (const noise; MACs are per batch).

    With `passes` > 1 the whole sweep runs that many times and each entry keeps its lowest median
    (on a shared machine other load only ever slows a pass down). The peak is measured before and
    after every pass and the highest kept; all peak runs and the 1-minute load averages go to `machine`.
    """
    for impl in impls:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    configs = [(r, q, SubnetConfig.uniform(G.arch, q, r)) for r in resolutions for q in ratios]  # validates
    result = BenchResult([Row(r, q, batch * c.macs, batch * c.paper_macs) for r, q, c in configs], None,
                         machine_info())
    result.machine.update(loads=[], peak_runs_gflops=[], passes=passes, clock=clock, batch=batch)
    w = latent(G, batch=batch)

    def probe_peak():
        if peak:
            p = measure_peak(clock=clock)
            result.machine["peak_runs_gflops"].append(round(p.gflops, 1))
            result.peak = max([x for x in (result.peak, p) if x], key=lambda x: x.gflops)
            if log:
                log(f"peak: {p.gflops:.1f} GFLOP/s ({p.shape}, {p.ms:.1f} ms)")
        result.machine["loads"].append(_loadavg())

    for k in range(passes):
        probe_peak()
        for row, (_, _, config) in zip(result.rows, configs):
            for impl in impls:
                t = time_forward(G, w, config, impl, repeats, warmup, budget_s, clock)
                if impl not in row.ms or t.median_ms < row.ms[impl]:
                    row.ms[impl], row.repeats[impl], row.min_ms[impl] = t.median_ms, len(t.times_s), t.min_s * 1000
                if log:
                    log(f"pass {k + 1} {row.label:>9} {impl:>6}: {t.median_ms:9.2f} ms (median of "
                        f"{len(t.times_s)}, min {t.min_s * 1000:.2f}), load {_loadavg()}")
    probe_peak()
    return result


def _loadavg() -> float | None:
    try:
        return round(float(Path("/proc/loadavg").read_text().split()[0]), 2)
    except (OSError, ValueError, IndexError):
        return None


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def markdown_table(result: BenchResult) -> str:
    """Config, true GMACs, ref ms, kernel ms, speed-up, kernel GFLOP/s and % of the measured peak."""
    peak = result.peak.gflops if result.peak else None
    lines = ["| config (res/ratio) | true GMACs | ref ms | kernel ms | speed-up | ref GFLOP/s | kernel GFLOP/s "
             "| kernel % of peak |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result.rows:
        k = r.gflops("kernel")
        pct = 100 * k / peak if k is not None and peak else None
        lines.append(f"| {r.label} | {r.macs / 1e9:.2f} | {_fmt(r.ms.get('ref'), '.1f')} | "
                     f"{_fmt(r.ms.get('kernel'), '.1f')} | {_fmt(r.speedup(), '.2f', 'x')} | "
                     f"{_fmt(r.gflops('ref'), '.1f')} | {_fmt(k, '.1f')} | {_fmt(pct, '.0f', '%')} |")
    return "\n".join(lines)


def report_markdown(result: BenchResult) -> str:
    m = result.machine
    head = ["# anycost bench", "", f"batch {m.get('batch', 1)}, fp32, noise const, {m.get('threads', '?')} threads, "
            f"{m.get('clock', 'wall')} clock, malloc {m.get('malloc', 'default')}, "
            f"torch {m.get('torch', '?')}, {m.get('time', '')}".rstrip(", "), ""]
    if result.peak:
        runs = f"; best of runs {m['peak_runs_gflops']}" if m.get("peak_runs_gflops") else ""
        head += [f"measured peak: **{result.peak.gflops:.1f} GFLOP/s** ({result.peak.shape}, "
                 f"{result.peak.ms:.1f} ms{runs})", ""]
    if m.get("loads"):
        head += [f"best median of {m.get('passes', 1)} pass(es); 1-min load average at each peak probe: "
                 f"{m['loads']}", ""]
    return "\n".join(head + [markdown_table(result), ""])


def plot(result: BenchResult, path: str | Path) -> Path | None:
    """GFLOP/s per config and impl, with the peak as a line; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    labels = [r.label for r in result.rows]
    impls = [i for i in IMPLS if any(i in r.ms for r in result.rows)]
    fig, (ax_ms, ax_gf) = plt.subplots(1, 2, figsize=(max(8, 0.7 * len(labels) + 4), 4.5))
    width = 0.8 / max(1, len(impls))
    for j, impl in enumerate(impls):
        xs = [i + (j - (len(impls) - 1) / 2) * width for i in range(len(labels))]
        ax_ms.bar(xs, [r.ms.get(impl, math.nan) for r in result.rows], width, label=impl)
        ax_gf.bar(xs, [r.gflops(impl) or math.nan for r in result.rows], width, label=impl)
    ax_ms.set_yscale("log")
    ax_ms.set_ylabel(f"ms per batch of {result.machine.get('batch', 1)} (log)")
    ax_gf.set_ylabel("GFLOP/s (2 x true MACs / time)")
    if result.peak:
        ax_gf.axhline(result.peak.gflops, color="k", ls="--", lw=1, label=f"peak {result.peak.gflops:.0f}")
        ax_gf.axhline(0.6 * result.peak.gflops, color="gray", ls=":", lw=1, label="60% of peak")
    for ax in (ax_ms, ax_gf):
        ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=8)
        ax.legend(fontsize=8)
    fig.suptitle(f"anycost generator, fp32, batch {result.machine.get('batch', 1)}, "
                 f"{result.machine.get('threads', '?')} threads")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(result: BenchResult, out: str | Path) -> dict[str, Path]:
    """bench.md, bench.json and (with matplotlib) bench.png in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "bench.md", "json": out / "bench.json"}
    paths["md"].write_text(report_markdown(result))
    paths["json"].write_text(result.to_json())
    png = plot(result, out / "bench.png")
    if png:
        paths["png"] = png
    return paths


# -- pytest-benchmark JSON ---------------------------------------------------------------------
def from_pytest_benchmark(data: dict) -> BenchResult:
    """Rows from a ``--benchmark-json`` file of bench/bench_generator.py (extra_info carries the config)."""
    if not isinstance(data, dict) or "benchmarks" not in data:
        raise ValueError("not a pytest-benchmark JSON file (no 'benchmarks' list)")
    rows: dict[tuple[int, float], Row] = {}
    peak = None
    for b in data["benchmarks"]:
        info, median = b.get("extra_info", {}), b["stats"]["median"]
        if info.get("kind") == "peak":
            peak = Peak(gflops(info["macs"], median), median * 1000, info["macs"], info.get("shape", "conv2d"))
        elif info.get("kind") == "generator":
            key = (info["resolution"], info["ratio"])
            row = rows.setdefault(key, Row(info["resolution"], info["ratio"], info["macs"], info.get("paper_macs", 0)))
            row.ms[info["impl"]] = median * 1000
            row.repeats[info["impl"]] = b["stats"].get("rounds", 0)
    threads = {b.get("extra_info", {}).get("threads") for b in data["benchmarks"]} - {None}
    machine = {"threads": ",".join(map(str, sorted(threads))) or "?",
               "cpu": data.get("machine_info", {}).get("cpu", {}).get("brand_raw", ""),
               "time": data.get("datetime", "")}
    ordered = sorted(rows.values(), key=lambda r: (-r.resolution, -r.ratio))
    return BenchResult(ordered, peak, machine)


def load_result(path: str | Path) -> BenchResult:
    """An ``anycost bench`` bench.json or a pytest-benchmark JSON file."""
    data = json.loads(Path(path).read_text())
    return BenchResult.from_dict(data) if data.get("kind") == RESULT_KIND else from_pytest_benchmark(data)


# -- per-layer timing --------------------------------------------------------------------------
def modconv_macs(c_in: int, c_out: int, size_in: int, upsample: bool = False) -> int:
    """True MACs of one modulated 3x3 conv (batch 1): the conv at its input size, plus the 4x4 blur
    after a 2x upsampling one (the style linear is not part of the op)."""
    conv = size_in * size_in * c_in * c_out * 9
    return conv + ((2 * size_in) ** 2 * c_out * 16 if upsample else 0)


def layer_macs(module, x_shape: Sequence[int], c_out: int, style_dim: int) -> int:
    """True MACs (batch 1) of one StyledConv or ToRGB call on input `x_shape`, as `anycost.macs` counts them."""
    from anycost.models.layers import StyledConv, ToRGB

    c_in, h = x_shape[1], x_shape[2]
    if isinstance(module, StyledConv):
        return style_dim * c_in + modconv_macs(c_in, c_out, h, module.upsample)
    if isinstance(module, ToRGB):
        return style_dim * c_in + h * h * 3 * c_in + (h * h * 3 * 16 if h > 4 else 0)
    raise TypeError(f"no MAC count for {type(module).__name__}")


def layer_times(G, w: torch.Tensor, config: SubnetConfig, impl: str, repeats: int = 5,
                warmup: int = 1, clock: str = "wall") -> list[dict]:
    """Median time of every StyledConv / ToRGB call of one forward (forward hooks, batch 1)."""
    from anycost.models.layers import StyledConv, ToRGB

    now = CLOCKS[clock]
    samples: dict[str, list[float]] = {}
    meta: dict[str, dict] = {}
    starts: dict[str, float] = {}
    handles = []

    def pre(name):
        def hook(module, args):
            starts[name] = now()
        return hook

    def post(name):
        def hook(module, args, out):
            samples.setdefault(name, []).append(now() - starts[name])
            x = args[0]
            if name not in meta:
                macs = layer_macs(module, x.shape, out.shape[1], G.arch.style_dim)
                kind = "upconv" if getattr(module, "upsample", False) else type(module).__name__
                meta[name] = {"layer": name, "kind": kind, "shape": f"{x.shape[1]}->{out.shape[1]} @ {out.shape[2]}",
                              "macs": macs}
        return hook

    for name, m in G.named_modules():
        if isinstance(m, (StyledConv, ToRGB)):
            handles += [m.register_forward_pre_hook(pre(name)), m.register_forward_hook(post(name))]
    try:
        if warmup:
            time_forward(G, w, config, impl, warmup, warmup=0)
        samples.clear()
        time_forward(G, w, config, impl, repeats, warmup=0)
    finally:
        for h in handles:
            h.remove()
    rows = []
    for name, info in meta.items():
        ms = statistics.median(samples[name]) * 1000
        rows.append({**info, "ms": ms, "gflops": gflops(info["macs"], ms / 1000)})
    return rows


def layer_table(rows: Iterable[dict], peak: float | None = None) -> str:
    rows = list(rows)
    total = sum(r["ms"] for r in rows)
    lines = ["| layer | kind | c_in->c_out @ out px | MMACs | ms | % of layer time | GFLOP/s | % of peak |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        pct = 100 * r["gflops"] / peak if peak else None
        lines.append(f"| {r['layer']} | {r['kind']} | {r['shape']} | {r['macs'] / 1e6:.1f} | {r['ms']:.2f} | "
                     f"{100 * r['ms'] / total:.1f}% | {r['gflops']:.1f} | {_fmt(pct, '.0f', '%')} |")
    return "\n".join(lines)

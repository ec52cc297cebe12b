"""Bench results as people read them: a markdown table, a plot, the files `anycost bench` writes, and the
same rows read back from a pytest-benchmark JSON file of ``bench/bench_generator.py``; the per-width table of a
SlimGAN generator (`SlimBenchResult`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from anycost.benchmark.generator_bench import IMPLS, RESULT_KIND, BenchResult, Row
from anycost.benchmark.peak import Peak
from anycost.benchmark.slimgan_bench import SlimBenchResult
from anycost.benchmark.timing import gflops


def fmt_cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def markdown_table(result: BenchResult) -> str:
    """Config, true GMACs, ref ms, kernel ms, speed-up, kernel GFLOP/s and % of the measured peak; when
    bf16 was timed also kernel-bf16 ms, its speed-up over the fp32 kernel, GFLOP/s and % of the bf16 peak."""
    peak = result.peak.gflops if result.peak else None
    peak_bf16 = result.peak_bf16.gflops if result.peak_bf16 else None
    bf16 = any("kernel-bf16" in r.ms for r in result.rows)
    lines = ["| config (res/ratio) | true GMACs | ref ms | kernel ms | speed-up | ref GFLOP/s | kernel GFLOP/s "
             "| kernel % of peak |" + (" kernel-bf16 ms | bf16 / fp32 speed-up | bf16 GFLOP/s | bf16 % of bf16 peak |"
                                       if bf16 else ""),
             "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" * 4 if bf16 else "")]
    for r in result.rows:
        k = r.gflops("kernel")
        pct = 100 * k / peak if k is not None and peak else None
        line = (f"| {r.label} | {r.macs / 1e9:.2f} | {fmt_cell(r.ms.get('ref'), '.1f')} | "
                f"{fmt_cell(r.ms.get('kernel'), '.1f')} | {fmt_cell(r.speedup(), '.2f', 'x')} | "
                f"{fmt_cell(r.gflops('ref'), '.1f')} | {fmt_cell(k, '.1f')} | {fmt_cell(pct, '.0f', '%')} |")
        if bf16:
            kb = r.gflops("kernel-bf16")
            pct_b = 100 * kb / peak_bf16 if kb is not None and peak_bf16 else None
            line += (f" {fmt_cell(r.ms.get('kernel-bf16'), '.1f')} | "
                     f"{fmt_cell(r.speedup('kernel', 'kernel-bf16'), '.2f', 'x')} | {fmt_cell(kb, '.1f')} | "
                     f"{fmt_cell(pct_b, '.0f', '%')} |")
        lines.append(line)
    return "\n".join(lines)


def report_markdown(result: BenchResult) -> str:
    m = result.machine
    precisions = "+".join(m.get("precisions", ["fp32"]))
    head = ["# anycost bench", "", f"batch {m.get('batch', 1)}, {precisions}, noise const, "
            f"{m.get('threads', '?')} threads, "
            f"{m.get('clock', 'wall')} clock, malloc {m.get('malloc', 'default')}, "
            f"torch {m.get('torch', '?')}, {m.get('time', '')}".rstrip(", "), ""]
    if result.peak:
        runs = f"; best of runs {m['peak_runs_gflops']}" if m.get("peak_runs_gflops") else ""
        head += [f"measured peak: **{result.peak.gflops:.1f} GFLOP/s** ({result.peak.shape}, "
                 f"{result.peak.ms:.1f} ms{runs})", ""]
    if result.peak_bf16:
        runs = f"; best of runs {m['peak_bf16_runs_gflops']}" if m.get("peak_bf16_runs_gflops") else ""
        head += [f"measured bf16 peak: **{result.peak_bf16.gflops:.1f} GFLOP/s** ({result.peak_bf16.shape}, "
                 f"{result.peak_bf16.ms:.1f} ms{runs})", ""]
    if m.get("loads"):
        head += [f"best median of {m.get('passes', 1)} pass(es); 1-min load average at each peak probe: "
                 f"{m['loads']}", ""]
    return "\n".join(head + [markdown_table(result), ""])


def slim_markdown_table(result: SlimBenchResult) -> str:
    """Per width: channels, MMACs of one image, the median ms of the batch, images/s and GFLOP/s."""
    b = result.batch
    lines = [f"| width | channels | MMACs per image | ms per batch of {b} | images/s | GFLOP/s |",
             "|---:|---|---:|---:|---:|---:|"]
    for r in result.rows:
        lines.append(f"| {r.width:g}x | {'-'.join(map(str, r.channels))} | {r.macs / 1e6:.2f} | {r.ms:.2f} | "
                     f"{r.images_per_s(b):.0f} | {r.gflops(b):.1f} |")
    return "\n".join(lines)


def slim_report_markdown(result: SlimBenchResult) -> str:
    m = result.machine
    head = ["# anycost bench: SlimGAN widths", "", f"model: {m.get('model', '?')}", "",
            f"batch {result.batch}, fp32, median of repeats, {m.get('threads', '?')} threads, "
            f"{m.get('clock', 'wall')} clock, torch {m.get('torch', '?')}, {m.get('time', '')}".rstrip(", "), ""]
    return "\n".join(head + [slim_markdown_table(result), ""])


def plot(result: BenchResult, path: str | Path) -> Path | None:
    """GFLOP/s per config and impl, with the peak as a line; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    labels = [r.label for r in result.rows]
    impls = [i for i in IMPLS + tuple(f"{i}-bf16" for i in IMPLS) if any(i in r.ms for r in result.rows)]
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
    precisions = "+".join(result.machine.get("precisions", ["fp32"]))
    fig.suptitle(f"anycost generator, {precisions}, batch {result.machine.get('batch', 1)}, "
                 f"{result.machine.get('threads', '?')} threads")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_outputs(result: BenchResult | SlimBenchResult, out: str | Path) -> dict[str, Path]:
    """bench.md, bench.json and, for a `BenchResult` (with matplotlib), bench.png in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / "bench.md", "json": out / "bench.json"}
    slim = isinstance(result, SlimBenchResult)
    paths["md"].write_text(slim_report_markdown(result) if slim else report_markdown(result))
    paths["json"].write_text(result.to_json())
    png = None if slim else plot(result, out / "bench.png")
    if png:
        paths["png"] = png
    return paths


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

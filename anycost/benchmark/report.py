"""Bench results as people read them: markdown tables, a plot, the files `anycost bench` writes, and the
same rows read back from a pytest-benchmark JSON file of ``bench/bench_generator.py``; the per-width table of a
SlimGAN generator (`SlimBenchResult`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from anycost.benchmark.backends import backend_codes
from anycost.benchmark.generator_bench import IMPLS, OFFICIAL, PRECISIONS, RESULT_KIND, BenchResult, Row, entry_name
from anycost.benchmark.peak import Peak
from anycost.benchmark.slimgan_bench import SlimBenchResult
from anycost.benchmark.timing import gflops
from anycost.images import pyplot


def fmt_cell(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


#: What the backends columns hold.
BACKENDS_NOTE = ("backends: one letter per styled conv in call order (conv1, convs.0, convs.1, ...): k our native "
                 "kernel, r the reference (the styles scale the input, one oneDNN fp32 conv, the demodulation scales "
                 "the output), b the oneDNN bf16 conv.")


def timed_entries(result: BenchResult) -> list[str]:
    """The entries timed in `result`, in `IMPLS` order, each impl's fp32 before its bf16."""
    names = [entry_name(impl, precision) for impl in IMPLS for precision in PRECISIONS]
    return [n for n in names if any(n in r.ms for r in result.rows)]


def baseline(names: list[str]) -> str | None:
    """The entry the speed-ups are over: the official formulation, else our reference, else none."""
    return next((n for n in (OFFICIAL, "ref") if n in names), None)


def _peak_of(result: BenchResult, name: str) -> float | None:
    """The measured peak an entry is compared with: the bf16 one for a bf16 entry, else the fp32 one."""
    peak = result.peak_bf16 if name.endswith("-bf16") else result.peak
    return peak.gflops if peak else None


def times_table(result: BenchResult) -> str:
    """Config, true GMACs, the ms of every entry, the speed-up of every other entry over the baseline (`baseline`)
    and of every impl's bf16 over its fp32."""
    names = timed_entries(result)
    base = baseline(names)
    over_base = [n for n in names if base and n != base]
    bf16 = [n for n in names if n.endswith("-bf16") and n.removesuffix("-bf16") in names]
    head = (["config (res/ratio)", "true GMACs"] + [f"{n} ms" for n in names] + [f"{n} vs {base}" for n in over_base]
            + [f"{n} vs {n.removesuffix('-bf16')}" for n in bf16])
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in result.rows:
        cells = ([r.label, f"{r.macs / 1e9:.2f}"] + [fmt_cell(r.ms.get(n), ".1f") for n in names]
                 + [fmt_cell(r.speedup(base, n), ".2f", "x") for n in over_base]
                 + [fmt_cell(r.speedup(n.removesuffix("-bf16"), n), ".2f", "x") for n in bf16])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def throughput_table(result: BenchResult) -> str:
    """Config, GFLOP/s (2 x true MACs / time) of every entry with its % of the peak measured in the same run (bf16
    entries: of the bf16 peak), and the backends our entries' styled convs took (`backends_cell`)."""
    names = timed_entries(result)
    shows_backends = any(r.backends for r in result.rows)
    head = ["config (res/ratio)"] + [f"{n} GFLOP/s (% of peak)" for n in names] + ["backends"] * shows_backends
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(names) + "---|" * shows_backends]
    for r in result.rows:
        cells = [r.label]
        for n in names:
            g, peak = r.gflops(n), _peak_of(result, n)
            cells.append(fmt_cell(g, ".1f") + (f" ({100 * g / peak:.0f}%)" if g is not None and peak else ""))
        lines.append("| " + " | ".join(cells + [backends_cell(r, names)] * shows_backends) + " |")
    return "\n".join(lines)


def backends_cell(row: Row, names: list[str]) -> str:
    """The backend letters (`backend_codes`) of each entry of `row` that has them, entries with the same letters
    named together: "ref, ref-bf16: rrrrr; auto: kkkkk; auto-bf16: bbkkk"."""
    by_codes: dict[str, list[str]] = {}
    for n in names:
        if n in row.backends:
            by_codes.setdefault(backend_codes(row.backends[n]), []).append(n)
    return "; ".join(f"{', '.join(group)}: {codes}" for codes, group in by_codes.items()) or "-"


def markdown_table(result: BenchResult) -> str:
    """The times table, then the throughput table with a note on the backend letters when it shows any."""
    parts = [times_table(result), throughput_table(result)]
    if any(r.backends for r in result.rows):
        parts.append(BACKENDS_NOTE)
    return "\n\n".join(parts)


def report_markdown(result: BenchResult) -> str:
    m = result.machine
    precisions = "+".join(m.get("precisions", ["fp32"]))
    head = ["# anycost bench", "", f"batch {m.get('batch', 1)}, {precisions}, noise const, "
            f"{m.get('threads', '?')} threads, "
            f"{m.get('clock', 'wall')} clock, malloc {m.get('malloc', 'default')}, "
            f"torch {m.get('torch', '?')}, {m.get('time', '')}".rstrip(", "), ""]
    if "cpu_capability" in m:  # absent in version-1 files
        levels = ", ".join(m.get("cpu_levels", [])) or "none"
        head += [f"CPU: {m.get('cpu', '?')}; instruction-set levels {levels}, native kernels at "
                 f"**{m['cpu_capability']}**; tuning table: {m.get('tuning_table', '?')}", ""]
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
    if any(ns is not None for ns in m.get("core_pair_ns", [])):  # absent in older files
        head += [f"cache-line round trip between the first two CPUs at each peak probe, ns (tens: they share a "
                 f"last-level cache; hundreds: they do not): {m['core_pair_ns']}", ""]
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
    """ms and GFLOP/s per config and entry, with the peaks as lines; None when matplotlib is missing."""
    plt = pyplot()
    if plt is None:
        return None
    labels = [r.label for r in result.rows]
    names = timed_entries(result)
    fig, (ax_ms, ax_gf) = plt.subplots(1, 2, figsize=(max(8, 0.7 * len(labels) + 4), 4.5))
    width = 0.8 / max(1, len(names))
    for j, name in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(labels))]
        ax_ms.bar(xs, [r.ms.get(name, math.nan) for r in result.rows], width, label=name)
        ax_gf.bar(xs, [r.gflops(name) or math.nan for r in result.rows], width, label=name)
    ax_ms.set_yscale("log")
    ax_ms.set_ylabel(f"ms per batch of {result.machine.get('batch', 1)} (log)")
    ax_gf.set_ylabel("GFLOP/s (2 x true MACs / time)")
    if result.peak:
        ax_gf.axhline(result.peak.gflops, color="k", ls="--", lw=1, label=f"peak {result.peak.gflops:.0f}")
        ax_gf.axhline(0.7 * result.peak.gflops, color="gray", ls=":", lw=1, label="70% of peak (the fp32 target)")
    if result.peak_bf16:
        bf16 = result.peak_bf16.gflops
        ax_gf.axhline(bf16, color="C3", ls="--", lw=1, label=f"bf16 peak {bf16:.0f}")
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

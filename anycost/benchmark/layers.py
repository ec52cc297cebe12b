"""Per-layer timings of one generator forward (forward hooks on every StyledConv and ToRGB), as a table. A ToRGB
fused into the conv before it (`anycost.ops.styled_conv_to_rgb`) is timed, and its MACs counted, with that conv
(kind "conv+rgb")."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import torch

from anycost.benchmark.generator_bench import time_forward
from anycost.benchmark.report import fmt_cell
from anycost.benchmark.timing import CLOCKS, gflops
from anycost.models.stylegan2 import SubnetConfig
from anycost.models.stylegan2.layers import StyledConv, ToRGB
from anycost.models.stylegan2.macs import styled_conv_macs, to_rgb_macs


def layer_macs(module, x_shape: Sequence[int], c_out: int, style_dim: int) -> int:
    """True MACs (batch 1) of one StyledConv or ToRGB call on input `x_shape`, as `SubnetConfig.macs` counts them."""
    c_in, h = x_shape[1], x_shape[2]
    if isinstance(module, StyledConv):
        return styled_conv_macs(style_dim, c_in, c_out, h, module.upsample)
    if isinstance(module, ToRGB):
        return to_rgb_macs(style_dim, c_in, h)
    raise TypeError(f"no MAC count for {type(module).__name__}")


def layer_times(G, w: torch.Tensor, config: SubnetConfig, impl: str, repeats: int = 5,
                warmup: int = 1, clock: str = "wall") -> list[dict]:
    """Median time of every StyledConv / ToRGB call of one forward (forward hooks, batch 1)."""
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
                fused = isinstance(out, tuple) and out[1] is not None  # a StyledConv with its ToRGB
                c_out = args[2] if isinstance(module, StyledConv) else out.shape[1]
                macs = layer_macs(module, x.shape, c_out, G.arch.style_dim)
                if fused:
                    macs += to_rgb_macs(G.arch.style_dim, c_out, x.shape[2])
                kind = type(module).__name__
                if isinstance(module, StyledConv) and (module.upsample or fused):
                    kind = "upconv" if module.upsample else "conv+rgb"
                size = x.shape[2] * (2 if kind == "upconv" else 1)
                meta[name] = {"layer": name, "kind": kind, "shape": f"{x.shape[1]}->{c_out} @ {size}",
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
                     f"{100 * r['ms'] / total:.1f}% | {r['gflops']:.1f} | {fmt_cell(pct, '.0f', '%')} |")
    return "\n".join(lines)

"""`anycost compress`: compress a generator with one or more methods and settings, write each compressed model
and a report (markdown + JSON) of file size, MACs and latency ratios, set-up time and distance to the original."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anycost import cli_args
from anycost.compression.report import METHODS, Row, Setting, distances, latency_ratio, markdown, timed_apply


def _values(kind: type):
    def parse(text: str) -> list:
        try:
            return cli_args.parse_list(text, kind)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    return parse


def _cheap(text: str) -> tuple[int, float]:
    res, sep, ratio = text.partition(":")
    try:
        return int(res), float(ratio) if sep else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad config {text!r}: give RESOLUTION:RATIO, e.g. 32:0.25") from None


def add_parser(sub) -> None:
    p = sub.add_parser("compress", help="prune / channel-prune / k-means a generator, with a quality-size report")
    p.add_argument("--method", type=_values(str), default=["prune"],
                   help=f"comma-separated methods out of {','.join(METHODS)}")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--sparsity", type=_values(float), default=[0.5], help="prune: fractions of conv weights zeroed")
    p.add_argument("--scope", type=_values(str), default=["global"], help="prune: global and/or layer")
    p.add_argument("--keep", type=_values(float), default=[0.75], help="channels: fractions of channels kept")
    p.add_argument("--sort", action="store_true", help="channels: re-sort channels by importance first")
    p.add_argument("--bits", type=_values(int), default=[4], help="kmeans: index bits (1..8)")
    p.add_argument("--cheap", type=_cheap, default="32:0.25", help="the cheap config compared, RESOLUTION:RATIO")
    p.add_argument("-n", "--samples", type=int, default=16, help="latents the distances average over")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents and noise")
    p.add_argument("--perceptual", choices=("auto", "lpips-vgg", "hed-vgg", "none"), default="auto",
                   help="perceptual distance backend (none: MSE and PSNR only)")
    p.add_argument("--rounds", type=int, default=3, help="latency: alternating rounds of 5 calls per model")
    p.add_argument("--sparse-bench", action="store_true",
                   help="also time torch's sparse matmuls against dense on the model's conv shapes")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/compress",
                   help="folder for the models, report.md and report.json")
    p.set_defaults(func=cmd_compress)


def settings(args) -> list[Setting]:
    """Every (method, value) the options ask for, in the order of --method; ValueError on a bad one."""
    unknown = [m for m in args.method if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}: choose from {', '.join(METHODS)}")
    out = []
    for method in args.method:
        if method == "prune":
            out += [Setting("prune", s, scope) for scope in args.scope for s in args.sparsity]
        elif method == "channels":
            out += [Setting("channels", k, sort=args.sort) for k in args.keep]
        else:
            out += [Setting("kmeans", b) for b in args.bits]
    return out


def cmd_compress(args) -> None:
    import torch
    from tqdm.auto import tqdm

    from anycost.compression.files import save_generator
    from anycost.fileio import atomic_write
    from anycost.models.files import save_generator as save_dense
    from anycost.models.stylegan2 import generator_or_default

    cli_args.set_threads(args.threads)
    if args.samples < 1 or args.rounds < 1:
        raise ValueError(f"-n and --rounds must be >= 1, got {args.samples} and {args.rounds}")
    todo = settings(args)
    G, source = generator_or_default(args.checkpoint)
    configs = [G.full_config, G.subnet(resolution=args.cheap[0], ratio=args.cheap[1])]
    perceptual = None
    if args.perceptual != "none":
        from anycost.metrics.perceptual import load_perceptual

        perceptual = load_perceptual(args.perceptual)
    out = Path(args.out)
    dense_bytes = save_dense(G, out / "uncompressed.safetensors").stat().st_size
    zero = {c.describe(): {"mse": 0.0, "psnr": float("inf"), "perceptual": 0.0} for c in configs}
    rows = [Row("none", "uncompressed", dense_bytes, 1.0, 1.0, 1.0, 0.0, zero)]
    for setting in tqdm(todo, desc="compressing", unit="setting", disable=args.no_progress):
        with torch.no_grad():
            Gc, setup_s = timed_apply(setting, G)
        path = save_generator(Gc, out / f"{setting.slug}.safetensors", {"source": source})
        size = path.stat().st_size
        rows.append(Row(setting.method, setting.label, size, size / dense_bytes,
                        Gc.full_config.macs / G.full_config.macs, latency_ratio(G, Gc, args.rounds), setup_s,
                        distances(G, Gc, configs, args.samples, args.seed, perceptual)))
    table = markdown(rows, configs)
    report = {"source": source, "threads": torch.get_num_threads(), "n": args.samples, "seed": args.seed,
              "perceptual": getattr(perceptual, "name", None), "rows": [r.to_dict() for r in rows]}
    if args.sparse_bench:
        table += "\n" + _sparse_bench(G, args, report)
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(f"model: {source}\n\n{table}"))
    print(f"model: {source}\n\n{table}\nwrote {out}/report.md, report.json and {len(todo)} models")


def _sparse_bench(G, args, report: dict) -> str:
    """Time the sparse candidates at the pruning sparsities asked for (0.5, 0.8, 0.95 when none), into `report`;
    the markdown table of the summed-over-layers time relative to dense conv2d."""
    from anycost.compression.sparse_bench import CANDIDATES, measure_sparse_vs_dense, sparse_summary

    sparsities = sorted(set(args.sparsity)) if "prune" in args.method else [0.5, 0.8, 0.95]
    rows = measure_sparse_vs_dense(G.arch.full_widths, sparsities)
    summary = sparse_summary(rows)
    report["sparse_bench"] = {"layers": [r.to_dict() for r in rows], "relative_to_dense_conv": summary}
    lines = ["| sparsity | " + " | ".join(CANDIDATES) + " |", "|" + "---|" * (len(CANDIDATES) + 1)]
    lines += [f"| {s:.0%} | " + " | ".join(f"{summary[s][c]:.2f}" for c in CANDIDATES) + " |" for s in summary]
    return "time of all conv layers relative to dense conv2d (batch 1, in one run):\n\n" + "\n".join(lines) + "\n"

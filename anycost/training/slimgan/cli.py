"""`anycost slimgan train` and `anycost slimgan evaluate`: train a slimmable GAN, and score its widths."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from anycost import cli_args
from anycost.fileio import atomic_write
from anycost.models.slimgan import DEFAULT_WIDTHS, read_generator
from anycost.models.slimgan.arch import BACKBONES, CBN_KINDS
from anycost.models.slimgan.discriminators import MODES
from anycost.training.slimgan.config import DISTILL, SlimTrainConfig
from anycost.training.slimgan.samples import save_width_grid
from anycost.training.slimgan.trainer import SlimTrainer, load_slim_training_state

#: Options that shape a run; a resumed run keeps the saved ones, so giving one with --resume is an error.
RUN_OPTIONS = ("data", "backbone", "widths", "conditional", "ngf", "ndf", "cbn", "d_mode", "n_share", "distill",
               "lam", "batch", "lr", "n_dis", "ema", "seed")
#: Options a resumed run may change: they decide how long it runs and what it writes, not its steps.
RESUME_OPTIONS = ("steps", "sample_every", "checkpoint_every")
DEFAULT_STEPS = 5000
DEFAULT_DATA = "fashion-mnist"
#: The resolution of SNGAN's 32 px generators, the only one the presets build.
RESOLUTION = 32


def add_parser(sub) -> None:
    p = sub.add_parser("slimgan", help="slimmable GANs (SlimGAN): train, evaluate the widths")
    commands = p.add_subparsers(dest="slimgan_command", required=True, metavar="SUBCOMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    for command in commands.choices.values():
        command.formatter_class = cli_args.HelpFormatter


def _add_train(commands) -> None:
    p = commands.add_parser("train", help="train one generator at all its widths (or one width alone)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, required=True,
                   help="run folder: config.json, latest.pt, log.jsonl, samples/, generator.safetensors")
    p.add_argument("--resume", action="store_true", help="continue OUT/latest.pt exactly (its config is kept; "
                   "only --steps, --sample-every and --checkpoint-every may change)")
    p.add_argument("--data", help="fashion-mnist (grey, 10 classes), emoji (RGB, unconditional), another named "
                   "set or an image folder (default fashion-mnist)")
    p.add_argument("--conditional", action=argparse.BooleanOptionalAction,
                   help="class-conditional (scBN G, projection D); default: when the data has labels")
    p.add_argument("--backbone", choices=BACKBONES, help="SNGAN standard CNN or ResNet (default dcgan)")
    p.add_argument("--widths", type=cli_args.ratio_list, help="widths, increasing (default "
                   f"{','.join(f'{w:g}' for w in DEFAULT_WIDTHS)}); one width trains it alone (the individual "
                   "baseline)")
    p.add_argument("--ngf", type=int, help="G channels at full width (default: a quarter of SNGAN's)")
    p.add_argument("--ndf", type=int, help="D channels at full size (default: a quarter of SNGAN's)")
    p.add_argument("--cbn", choices=CBN_KINDS, help="conditional BN: sliceable (scBN, '+') or switchable ('x')")
    p.add_argument("--d-mode", choices=MODES, help="discriminators per width (default shared)")
    p.add_argument("--n-share", type=int, help="d-mode shared: leading D stages all widths share (default half)")
    p.add_argument("--distill", choices=DISTILL, help="inplace distillation (default stepwise; none for one width)")
    p.add_argument("--lambda", dest="lam", type=float, help="distillation weight (default 20; paper 10-30)")
    p.add_argument("--steps", type=int, help=f"G steps (default {DEFAULT_STEPS})")
    p.add_argument("--batch", type=int, help="images per step (default 32)")
    p.add_argument("--lr", type=float, help="Adam learning rate of G and D (default 2e-4)")
    p.add_argument("--n-dis", type=int, help="D steps per G step (default: 1 dcgan, 5 resnet)")
    p.add_argument("--ema", type=float, help="EMA decay of G, e.g. 0.999 (default 0: no EMA copy)")
    p.add_argument("--seed", type=int, help="seed of the weights and of every step (default 0)")
    p.add_argument("--sample-every", type=int, help="steps between sample grids (default 500)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 100)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)


def _add_evaluate(commands) -> None:
    p = commands.add_parser("evaluate", help="FID, KID and mIC of every width of SlimGAN generators")
    p.add_argument("generators", nargs="+", help="generator files (.safetensors) written by slimgan train")
    p.add_argument("--data", help="real images (default: what the first generator was trained on); "
                   "fashion-mnist is compared with its test split")
    p.add_argument("--n", type=int, default=1000, help="generated samples per width")
    p.add_argument("--n-real", type=int, default=1000, help="real images for the reference statistics")
    p.add_argument("--mic-n", type=int, help="latents for mIC (default --n; 0 = no mIC)")
    p.add_argument("--no-fid", action="store_true", help="mIC only")
    p.add_argument("--no-class-acc", action="store_true", help="skip the class accuracy per width (measured by "
                   "default for class-conditional Fashion-MNIST models, with the bundled classifier)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=32, help="images per Inception batch")
    p.add_argument("--cache", default="~/.cache/anycost/fid", help="folder for cached reference statistics")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/slimgan-eval",
                   help="folder for eval.md, eval.json and a sample grid per generator")
    p.set_defaults(func=cmd_evaluate)


# -- train ---------------------------------------------------------------------------------------------
def _given(args, names) -> list[str]:
    return ["--" + name.replace("_", "-").replace("lam", "lambda") for name in names if getattr(args, name) is not None]


def _new_config(args, classes: tuple[str, ...], img_channels: int):
    """The config of a new run from the options, the data's classes and its image channels."""
    conditional = bool(classes) if args.conditional is None else args.conditional
    if conditional and not classes:
        raise ValueError(f"--conditional needs labelled data: {args.data or DEFAULT_DATA!r} has no classes")
    widths = args.widths or DEFAULT_WIDTHS
    distill = args.distill or ("stepwise" if len(widths) > 1 else "none")
    fields = {k: getattr(args, k) for k in ("ndf", "d_mode", "n_share", "lam", "batch", "lr", "n_dis", "ema", "seed",
                                            "sample_every", "checkpoint_every")}
    return SlimTrainConfig.create(args.backbone or "dcgan", widths, len(classes) if conditional else 0,
                                  img_channels, args.ngf, args.cbn or "sliceable", data=args.data or DEFAULT_DATA,
                                  distill=distill, steps=args.steps or DEFAULT_STEPS, **fields)


def cmd_train(args) -> None:
    from anycost.data.named import load_labelled_images

    cli_args.set_threads(args.threads)
    out = Path(args.out)
    latest = out / "latest.pt"
    state = cfg = None
    if args.resume:
        if given := _given(args, RUN_OPTIONS):
            raise ValueError(f"--resume continues the saved run: leave out {', '.join(given)}")
        state = load_slim_training_state(latest)  # a bad checkpoint fails before the data loads
        changes = {k: getattr(args, k) for k in RESUME_OPTIONS if getattr(args, k) is not None}
        cfg = SlimTrainConfig.from_json(state["config"]).replace(**changes)
    elif latest.exists():
        raise FileExistsError(f"{latest} exists: pass --resume to continue it, or choose another --out")
    progress = not args.no_progress
    images, labels, classes = load_labelled_images(cfg.data if cfg else args.data or DEFAULT_DATA, RESOLUTION,
                                                   progress=progress)
    cfg = cfg or _new_config(args, classes, images.shape[1])
    trainer = SlimTrainer(cfg, images, labels if cfg.arch.conditional else None, out, torch.device(args.device),
                          progress)
    if state is not None:
        trainer.load_state_dict(state)
        print(f"resumed {latest} at step {trainer.step} of {cfg.steps}")
    else:
        print(f"training {cfg.arch.describe()}, widths {list(cfg.arch.widths)}, on {len(images)} images of "
              f"{cfg.data!r}; D {cfg.d_mode}, distillation {cfg.distill}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "config.json", lambda tmp: Path(tmp).write_text(cfg.to_json() + "\n"))
    trainer.train()
    print(f"wrote {trainer.export(out / 'generator.safetensors')}")


# -- evaluate ------------------------------------------------------------------------------------------
def _reference(data: str, resolution: int, args, extractor):
    """Inception statistics of `args.n_real` real images of `data` at `resolution`: its test split where it has
    one (Fashion-MNIST), else its training images; grey images copied to RGB. Cached in `args.cache`."""
    from anycost.data.named import TEST_SPLITS, load_labelled_images
    from anycost.images import to_rgb
    from anycost.metrics.fid import dataset_stats

    split = "test" if data in TEST_SPLITS else "train"
    images, _, _ = load_labelled_images(data, resolution, split, progress=False)
    reals = to_rgb(images.float() / 127.5 - 1)
    return dataset_stats(reals, min(args.n_real, len(reals)), Path(args.cache).expanduser(), name=f"{data}-{split}",
                         extractor=extractor, seed=args.seed, progress=True)


def _class_acc_classifier(loaded, args):
    """The classifier of the class-accuracy column (the bundled Fashion-MNIST one) and, per model, whether it is
    measured: for class-conditional models trained on Fashion-MNIST, unless --no-class-acc."""
    from anycost.metrics import fashion_classifier

    measured = [not args.no_class_acc and G.num_classes > 0
                and (info.get("data") or args.data) == fashion_classifier.DATA for G, info in loaded]
    return (fashion_classifier.load_fashion_classifier() if any(measured) else None), measured


def _class_acc_header(classifier: dict) -> str:
    """What the class-accuracy column measures, with the classifier's own test accuracy (`classifier`: its file
    and test accuracy, as eval.json records them)."""
    return (f"class acc.: the share of the samples that the Fashion-MNIST classifier {classifier['file']} (itself "
            f"{100 * classifier['test_accuracy']:.1f}% right on the test split) puts in the class they were "
            f"rendered for; chance is 10%. It stands in for the Inception Score, which our offline Inception network "
            f"(no classifier logits) cannot compute.\n\n")


def cmd_evaluate(args) -> None:
    from anycost.metrics.cli import model_labels
    from anycost.metrics.fashion_classifier import CLASSIFIER_NAME, recorded_accuracy
    from anycost.metrics.inception import InceptionFeatures
    from anycost.metrics.slimgan import evaluate_widths, markdown_table

    cli_args.set_threads(args.threads)
    loaded = [read_generator(path) for path in args.generators]
    resolution = loaded[0][0].arch.resolution
    if any(G.arch.resolution != resolution for G, _ in loaded):
        raise ValueError("all generators must have the same resolution (they share the real images)")
    data = args.data or loaded[0][1].get("data")
    if not data and not args.no_fid:
        raise ValueError(f"{args.generators[0]} does not say what it was trained on: pass --data")
    classifier, measured = _class_acc_classifier(loaded, args)
    extractor = InceptionFeatures(batch_size=args.batch)
    reference = None if args.no_fid else _reference(data, resolution, args, extractor)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    models, report = [], []
    for (G, _), label, path, acc in zip(loaded, model_labels(args.generators), args.generators, measured):
        print(f"{label}: {len(G.widths)} widths x {args.n} samples", flush=True)
        rows, mic = evaluate_widths(G, reference, args.n, args.seed, args.batch, mic_n=args.mic_n,
                                    extractor=extractor, classifier=classifier if acc else None, progress=True)
        grid = save_width_grid(G, out / f"{label.replace('/', '-')}-grid.png")
        models.append((label, rows, mic))
        report.append({"label": label, "path": str(path), "grid": grid.name, "rows": rows,
                       "mic": None if mic is None else mic.to_dict()})
    meta = {"data": data, "reference": None if reference is None else reference.key, "n": args.n,
            "n_real": args.n_real, "seed": args.seed, "features": extractor.identifier}
    table = markdown_table(models)
    if classifier is not None:
        meta["class_acc_classifier"] = {"file": CLASSIFIER_NAME, "test_accuracy": recorded_accuracy(classifier)}
        table = _class_acc_header(meta["class_acc_classifier"]) + table
    atomic_write(out / "eval.json", lambda tmp: Path(tmp).write_text(json.dumps({"meta": meta, "models": report},
                                                                                indent=1) + "\n"))
    atomic_write(out / "eval.md", lambda tmp: Path(tmp).write_text(table))
    print(table + f"wrote {out / 'eval.md'} and {out / 'eval.json'}")

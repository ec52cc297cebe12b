"""`anycost gan-compression train-teacher | distill`: the GAN Compression training commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from anycost import cli_args
from anycost.gan_compression.losses import GAN_LOSSES
from anycost.gan_compression.tasks import TASKS

DEFAULT_TASK = "fmnist-edges2shoes"


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(cli_args.parse_list(text, int))
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _common(p: argparse.ArgumentParser, default_task: str | None) -> None:
    """The options every training command shares."""
    p.add_argument("--out", "-o", type=cli_args.output_folder, required=True,
                   help="run folder: config.json, latest.pt, log.jsonl, samples/, the trained generator")
    p.add_argument("--resume", action="store_true",
                   help="continue OUT/latest.pt with its saved config (only --steps may change: a longer run)")
    p.add_argument("--task", choices=tuple(TASKS), default=default_task,
                   help="the paired task to train on" + ("" if default_task else " (default: the teacher's)"))
    p.add_argument("--steps", type=int, help="training steps (default 1000; on --resume: the saved count)")
    p.add_argument("--batch", type=int, default=4, help="pairs per step (the paper's edges2shoes: 4)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and every step's batch")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of G and D (constant for the first "
                   "quarter of the steps, then linearly to 0)")
    p.add_argument("--gan-loss", choices=GAN_LOSSES, default="lsgan")
    p.add_argument("--lambda-recon", type=float, default=100.0, help="weight of the L1 loss to the target")
    p.add_argument("--sample-every", type=int, default=200, help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between writes of OUT/latest.pt")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")


def add_parser(sub) -> None:
    group = sub.add_parser("gan-compression", help="GAN Compression: train a pix2pix teacher, distil it into a "
                           "student or a once-for-all supernet")
    commands = group.add_subparsers(dest="gan_compression_command", required=True, metavar="COMMAND")
    p = commands.add_parser("train-teacher", help="train the teacher (pix2pix: ResNet G, PatchGAN, GAN + L1)",
                            formatter_class=cli_args.HelpFormatter)
    _common(p, DEFAULT_TASK)
    p.add_argument("--ngf", type=int, default=16, help="generator width after the stem (the paper's ngf)")
    p.add_argument("--n-blocks", type=int, default=9, help="residual blocks")
    p.add_argument("--ndf", type=int, default=32, help="PatchGAN width")
    p.set_defaults(func=cmd_train_teacher)

    p = commands.add_parser("distill", help="distil a teacher run into a smaller student (--supernet: train the "
                            "student as a once-for-all supernet, one random sub-network per step)",
                            formatter_class=cli_args.HelpFormatter)
    _common(p, None)
    p.add_argument("--teacher", type=Path, help="the teacher's run folder (train-teacher --out); needed unless "
                   "--resume")
    p.add_argument("--supernet", action="store_true", help="once-for-all training of every sub-network")
    p.add_argument("--student-ngf", type=int, default=8, help="student (supernet) ngf")
    p.add_argument("--student-widths", type=_widths, help="explicit per-layer widths instead of --student-ngf "
                   "(stem, down1, down2, one per block, up1, up2)")
    p.add_argument("--dense", action="store_true", help="dense residual blocks (default: depthwise-separable, "
                   "as the paper's students)")
    p.add_argument("--width-step", type=int, default=4, help="sub-network widths are multiples of this")
    p.add_argument("--init-student", type=Path, help="start the student from this generator file (e.g. a "
                   "distilled student, to start a supernet from it); its widths must fit in the student's")
    p.add_argument("--lambda-distill", type=float, default=1.0, help="weight of the feature distillation loss")
    p.set_defaults(func=cmd_distill)


def _resumed(args, roles: tuple[str, ...]):
    """(config, state) of OUT/latest.pt for --resume, the config's steps changed by --steps."""
    from anycost.gan_compression.config import RunConfig
    from anycost.gan_compression.run import load_run_state

    state = load_run_state(Path(args.out) / "latest.pt")
    cfg = RunConfig.from_json(state["config"])
    if cfg.role not in roles:
        raise ValueError(f"{args.out} holds a {cfg.role} run; this command continues {' or '.join(roles)} runs")
    return (cfg.replace(steps=args.steps) if args.steps else cfg), state


def _fresh(args, **fields):
    """The config of a new run from the shared options, refusing to overwrite a run folder."""
    from anycost.gan_compression.config import RunConfig

    if (Path(args.out) / "latest.pt").exists():
        raise FileExistsError(f"{Path(args.out) / 'latest.pt'} exists: pass --resume to continue it, or choose "
                              "another --out")
    return RunConfig(steps=args.steps or 1000, batch=args.batch, seed=args.seed, lr=args.lr, gan_loss=args.gan_loss,
                     lambda_recon=args.lambda_recon, sample_every=args.sample_every,
                     checkpoint_every=args.checkpoint_every, **fields)


def _train(run, state, what: str) -> None:
    """Write the run's config, restore `state` if resuming, train to the end and export the generator."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    run.write_config()
    if state is not None:
        run.load_state_dict(state)
        print(f"resumed {run.out_dir / 'latest.pt'} at step {run.step} of {run.cfg.steps}")
    else:
        print(f"training {what} on {run.cfg.task} ({len(run.data)} pairs): {run.cfg.generator.describe()}")
    run.train()
    print(f"wrote {run.export()}")


def cmd_train_teacher(args) -> None:
    from anycost.gan_compression.discriminator import layers_for_size
    from anycost.gan_compression.teacher import TeacherRun
    from anycost.models.i2i import I2IArch

    cli_args.set_threads(args.threads)
    if args.resume:
        cfg, state = _resumed(args, ("teacher",))
    else:
        size = TASKS[args.task].image_size
        # The teacher is not sliced: its step is just a divisor of every width.
        arch = I2IArch.resnet(args.ngf, args.n_blocks, image_size=size, step=args.ngf)
        cfg, state = _fresh(args, role="teacher", task=args.task, generator=arch, ndf=args.ndf,
                            d_layers=layers_for_size(size)), None
    _train(TeacherRun(cfg, args.out, progress=not args.no_progress), state, "the teacher")


def _student_config(args):
    """The config of a new distill / supernet run: the task, D and teacher arch come from the teacher run."""
    from anycost.gan_compression.distill import load_teacher
    from anycost.models.i2i import I2IArch

    if args.teacher is None:
        raise ValueError("--teacher is needed (the teacher's run folder) unless --resume")
    teacher, _, teacher_cfg = load_teacher(args.teacher)
    if args.task is not None and args.task != teacher_cfg.task:
        raise ValueError(f"the teacher in {args.teacher} was trained on {teacher_cfg.task}, not {args.task}")
    t = teacher.arch
    options = dict(separable=not args.dense, image_size=t.image_size, step=args.width_step)
    if args.student_widths:
        arch = I2IArch(args.student_widths, **options)
    else:
        arch = I2IArch.resnet(args.student_ngf, t.n_blocks, **options)
    return _fresh(args, role="supernet" if args.supernet else "distill", task=teacher_cfg.task, generator=arch,
                  lambda_distill=args.lambda_distill, ndf=teacher_cfg.ndf, d_layers=teacher_cfg.d_layers,
                  teacher=str(Path(args.teacher).resolve()), teacher_arch=t)


def cmd_distill(args) -> None:
    from anycost.gan_compression.distill import DistillRun
    from anycost.models.i2i import load_generator

    cli_args.set_threads(args.threads)
    if args.resume:
        if args.init_student:
            raise ValueError("--init-student starts a new run; a resumed run continues from OUT/latest.pt")
        (cfg, state), init = _resumed(args, ("distill", "supernet")), None
    else:
        cfg, state = _student_config(args), None
        init = load_generator(args.init_student) if args.init_student else None
    run = DistillRun(cfg, args.out, progress=not args.no_progress, init_student=init)
    _train(run, state, "a supernet" if cfg.role == "supernet" else "a student")

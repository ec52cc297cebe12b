"""`anycost gan-compression train-teacher | distill | search | finetune | export | evaluate`: the GAN Compression
commands."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from anycost import cli_args
from anycost.gan_compression.config import RECON_TARGETS
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
                   help="the task to train on (paired, or unpaired: a CycleGAN teacher, students on pseudo pairs)"
                   + ("" if default_task else " (default: the teacher's)"))
    p.add_argument("--steps", type=int, help="training steps (default 1000; on --resume: the saved count)")
    p.add_argument("--batch", type=int, help="examples per step (default: 4 on a paired task, the paper's "
                   "edges2shoes; 1 on an unpaired one, CycleGAN's)")
    p.add_argument("--seed", type=int, default=0, help="initial weights and every step's batch")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate of G and D (constant for the first "
                   "quarter of the steps, then linearly to 0; on an unpaired task the first half)")
    p.add_argument("--gan-loss", choices=GAN_LOSSES, default="lsgan")
    p.add_argument("--lambda-recon", type=float, help="weight of the L1 loss to the target (CycleGAN: of the "
                   "cycle-consistency L1); default 100 on a paired task, 10 on an unpaired one (the paper's)")
    p.add_argument("--sample-every", type=int, default=200, help="steps between sample grids")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between writes of OUT/latest.pt")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")


def add_parser(sub) -> None:
    group = sub.add_parser("gan-compression", help="GAN Compression: train a pix2pix or CycleGAN teacher, distil "
                           "it into a student or a once-for-all supernet")
    commands = group.add_subparsers(dest="gan_compression_command", required=True, metavar="COMMAND")
    p = commands.add_parser("train-teacher", help="train the teacher (pix2pix: ResNet G, PatchGAN, GAN + L1; on an "
                            "unpaired task CycleGAN: two generators, two PatchGANs, GAN + cycle + identity L1)",
                            formatter_class=cli_args.HelpFormatter)
    _common(p, DEFAULT_TASK)
    p.add_argument("--ngf", type=int, default=16, help="generator width after the stem (the paper's ngf)")
    p.add_argument("--n-blocks", type=int, default=9, help="residual blocks")
    p.add_argument("--widths", type=_widths, help="explicit per-layer widths instead of --ngf and --n-blocks "
                   "(stem, down1, down2, one per block, up1, up2): with --separable, a student's arch trained from "
                   "scratch, the paper's baseline")
    p.add_argument("--separable", action="store_true", help="depthwise-separable residual blocks (default: dense)")
    p.add_argument("--ndf", type=int, default=32, help="PatchGAN width")
    p.add_argument("--lambda-identity", type=float, default=0.5, help="CycleGAN: weight of the identity L1, "
                   "relative to --lambda-recon")
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
    p.add_argument("--sample-macs", metavar="LOW:HIGH", help="with --supernet: draw each step's sub-network from "
                   "those with LOW to HIGH true MACs (fractions of the full student's, 0.5:0.6, or counts, 4.8M:5.7M):"
                   " the window a search under a budget looks in (default: every sub-network)")
    p.add_argument("--init-student", type=Path, help="start the student from this generator file (e.g. a "
                   "distilled student, to start a supernet from it); its widths must fit in the student's")
    p.add_argument("--lambda-distill", type=float, help="weight of the feature distillation loss (default 1 on a "
                   "paired task, 0.01 on an unpaired one: the paper's)")
    p.add_argument("--recon-target", choices=RECON_TARGETS, help="the L1 term's target: the real image "
                   "(default on a paired task), or the teacher's output (output distillation; with --lambda-distill "
                   "0 the paper's output-distillation baseline; pseudo pairs, the only choice on an unpaired task)")
    p.add_argument("--reset-discriminator", action="store_true", help="start the discriminator from random "
                   "weights instead of the teacher's (the paper's ablation; default: the teacher's)")
    p.set_defaults(func=cmd_distill)
    _add_search(commands)
    p = commands.add_parser("finetune", help="fine-tune a searched sub-network of a supernet, exported as a plain "
                            "generator, with the supernet's objective (distilled from the teacher)",
                            formatter_class=cli_args.HelpFormatter)
    _common(p, None)
    p.add_argument("--supernet", type=Path, help="the supernet's run folder (distill --supernet); needed unless "
                   "--resume")
    p.add_argument("--config", type=Path, help="the sub-network: search's best.json; needed unless --resume")
    p.add_argument("--lambda-distill", type=float, help="weight of the feature distillation loss (default 1 on a "
                   "paired task, 0.01 on an unpaired one)")
    p.set_defaults(func=cmd_finetune)
    p = commands.add_parser("export", help="write a sub-network of a supernet as a plain generator file (its "
                            "weights as the search evaluated them, not fine-tuned)")
    p.add_argument("--supernet", type=Path, required=True, help="the supernet's run folder")
    p.add_argument("--config", type=Path, required=True, help="the sub-network: search's best.json")
    p.add_argument("--out", "-o", type=Path, required=True, help="the generator file to write (.safetensors)")
    p.set_defaults(func=cmd_export)
    _add_evaluate(commands)


def _add_evaluate(commands) -> None:
    p = commands.add_parser("evaluate", help="generators side by side on the validation pairs: params, MACs, FID, "
                            "L1 and CPU latency (ratios against the first); on an unpaired task FID of the outputs "
                            "on the validation A images against all real B images, L1 to the first generator's",
                            formatter_class=cli_args.HelpFormatter)
    p.add_argument("generators", nargs="+", metavar="[LABEL=]FILE",
                   help="generator files (.safetensors); the first is the baseline (the teacher)")
    p.add_argument("--task", choices=tuple(TASKS), help="the task's validation pairs (default: the first "
                   "generator's task)")
    p.add_argument("-n", "--samples", type=int, help="validation pairs, or A images of an unpaired task (default: "
                   "all of them)")
    p.add_argument("--batch", type=int, default=64, help="images per forward and per Inception batch")
    p.add_argument("--rounds", type=int, default=5, help="latency: rounds in which every generator takes a turn")
    p.add_argument("--calls", type=int, default=20, help="latency: timed calls per turn, after 10 warm-up calls")
    p.add_argument("--latency-sizes", type=_widths, default=(), metavar="PX,...",
                   help="also time every generator on inputs of these sizes (multiples of 4): where the MAC cut "
                   "becomes a speed-up")
    p.add_argument("--layers", action="store_true", help="also time each conv of every generator alone at the "
                   "largest latency size, by kind, against the fp32 peak measured in the same run")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/gan-compression-eval",
                   help="folder for eval.md, eval.json and samples.png")
    p.set_defaults(func=cmd_evaluate)


def _add_search(commands) -> None:
    # choices are checked by run_search (a one-line error), so that building the parser imports no torch
    p = commands.add_parser("search", help="evolutionary search for the best sub-network of a supernet under a "
                            "MACs and/or latency budget, evaluated without retraining",
                            formatter_class=cli_args.HelpFormatter)
    p.add_argument("--supernet", type=Path, required=True, help="the supernet's run folder (distill --supernet)")
    p.add_argument("--budget-macs", help="a fraction of the full supernet's MACs (0.5) or MACs (2M, 0.002G); with "
                   "--budget-ms an extra constraint")
    p.add_argument("--budget-ms", type=float, help="latency budget (ms, batch 1) predicted by a per-conv table")
    p.add_argument("--latency-table", type=Path, help="latency table JSON (default: OUT/latency.json, measured "
                   "once if absent)")
    p.add_argument("--paper-macs", action="store_true", help="count MACs as the paper does (transposed convs at "
                   "their output size) instead of the true count")
    p.add_argument("--grouping", default="layer", help="layer: a width per layer; paper: the "
                   "residual blocks' inner widths in 3 groups (the paper code's 8 knobs)")
    p.add_argument("--metric", default="l1", help="fitness: l1, perceptual (a perceptual distance) or fid "
                   "(offline Inception)")
    p.add_argument("--reference", help="target or teacher: compare with the real targets or the teacher's outputs "
                   "(default: target on a paired task, teacher on an unpaired one)")
    p.add_argument("--perceptual", default="auto", help="the perceptual distance of --metric perceptual")
    p.add_argument("--samples", "-n", type=int, default=256, help="validation pairs the fitness uses (the first)")
    p.add_argument("--validate", type=int, default=256, help="validation pairs after those (another set) on which "
                   "the final parents and the uniform sub-networks within budget are measured again to pick the "
                   "result (0 = the search's best)")
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--parents", type=int, default=10, help="top sub-networks kept per generation")
    p.add_argument("--crossover", type=int, default=25, help="crossover children per generation")
    p.add_argument("--mutation", type=int, default=25, help="mutation children per generation")
    p.add_argument("--p-mutation", type=float, default=0.1, help="per-gene mutation probability")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.json")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", "-o", type=cli_args.output_folder, required=True,
                   help="folder for best.json, pareto.json / .png, state.json")
    p.set_defaults(func=cmd_search)


def _resumed(args, roles: tuple[str, ...]):
    """(config, state) of OUT/latest.pt for --resume, the config's steps changed by --steps."""
    from anycost.gan_compression.config import RunConfig
    from anycost.gan_compression.run import load_run_state

    state = load_run_state(Path(args.out) / "latest.pt")
    cfg = RunConfig.from_json(state["config"])
    if cfg.role not in roles:
        raise ValueError(f"{args.out} holds a {cfg.role} run; this command continues {' or '.join(roles)} runs")
    return (cfg.replace(steps=args.steps) if args.steps else cfg), state


def _schedule(args) -> dict:
    """The `RunConfig` fields of a new run's shared options, refusing to overwrite a run folder."""
    if (Path(args.out) / "latest.pt").exists():
        raise FileExistsError(f"{Path(args.out) / 'latest.pt'} exists: pass --resume to continue it, or choose "
                              "another --out")
    given = dict(batch=args.batch, lambda_recon=args.lambda_recon, lambda_distill=getattr(args, "lambda_distill", None))
    return dict(steps=args.steps or 1000, seed=args.seed, lr=args.lr, gan_loss=args.gan_loss,
                sample_every=args.sample_every, checkpoint_every=args.checkpoint_every,
                **{k: v for k, v in given.items() if v is not None})  # the others: the task's defaults


def _fresh(args, task: str, **fields):
    """The config of a new run on `task` from the shared options and `fields` (`RunConfig.for_task`)."""
    from anycost.gan_compression.config import RunConfig

    return RunConfig.for_task(task, **_schedule(args), **fields)


def _train(run, state, what: str) -> None:
    """Write the run's config, restore `state` if resuming, train to the end and export the generator."""
    run.out_dir.mkdir(parents=True, exist_ok=True)
    run.write_config()
    if state is not None:
        run.load_state_dict(state)
        print(f"resumed {run.out_dir / 'latest.pt'} at step {run.step} of {run.cfg.steps}")
    else:
        print(f"training {what} on {run.cfg.task} ({run.data.describe()}): {run.cfg.generator.describe()}")
    run.train()
    print(f"wrote {run.export()}")


def cmd_train_teacher(args) -> None:
    from anycost.gan_compression.config import TEACHER_ROLES
    from anycost.gan_compression.cyclegan import CycleGANRun
    from anycost.gan_compression.discriminator import layers_for_size
    from anycost.gan_compression.teacher import TeacherRun
    from anycost.models.i2i import I2IArch

    cli_args.set_threads(args.threads)
    if args.resume:
        cfg, state = _resumed(args, tuple(TEACHER_ROLES.values()))
    else:
        size = TASKS[args.task].image_size
        # The teacher is not sliced: its step is just a divisor of every width.
        options = dict(image_size=size, separable=args.separable)
        if args.widths:
            arch = I2IArch(args.widths, step=math.gcd(*args.widths), **options)
        else:
            arch = I2IArch.resnet(args.ngf, args.n_blocks, step=args.ngf, **options)
        role = TEACHER_ROLES[TASKS[args.task].paired]
        cfg, state = _fresh(args, args.task, role=role, generator=arch, ndf=args.ndf, d_layers=layers_for_size(size),
                            lambda_identity=args.lambda_identity), None
    cyclegan = cfg.role == "cyclegan"
    run = (CycleGANRun if cyclegan else TeacherRun)(cfg, args.out, progress=not args.no_progress)
    _train(run, state, "the CycleGAN teacher" if cyclegan else "the teacher")


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
    recon_target = args.recon_target or ("real" if TASKS[teacher_cfg.task].paired else "teacher")
    return _fresh(args, teacher_cfg.task, role="supernet" if args.supernet else "distill", generator=arch,
                  recon_target=recon_target, ndf=teacher_cfg.ndf, d_layers=teacher_cfg.d_layers,
                  teacher=str(Path(args.teacher).resolve()), teacher_arch=t,
                  reset_discriminator=args.reset_discriminator,
                  sample_macs=_macs_window(args.sample_macs, arch) if args.sample_macs else None)


def _macs_window(text: str, arch) -> tuple[int, int]:
    """--sample-macs LOW:HIGH as MAC counts (each a fraction of `arch`'s full MACs or a count)."""
    from anycost.models.i2i import I2IConfig
    from anycost.search.run import parse_macs_budget

    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"--sample-macs takes LOW:HIGH (0.5:0.6 or 4.8M:5.7M), got {text!r}")
    full = I2IConfig.full(arch).macs
    return tuple(round(parse_macs_budget(part, full)) for part in parts)


#: oneDNN primitives kept for reuse (its default keeps 1,024). A supernet's steps draw random widths, so its convs come
#: in thousands of shapes, and with the default each step rebuilt primitives it had evicted: 47.6 ms per step against
#: 44.8 with this (1,500 steps of the edges -> shoes supernet, 1 thread, Zen 4).
ONEDNN_CACHE_CAPACITY = "16384"


def cmd_distill(args) -> None:
    # Read by oneDNN when it builds its first primitive, so before any conv runs; a value the user set stays.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE_CAPACITY)
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


def _read_json(path: Path):
    import json

    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read the sub-network config {path}: {err}") from None


def cmd_search(args) -> None:
    from anycost.gan_compression.search import run_search

    cli_args.set_threads(args.threads)
    s = run_search(args.supernet, args.out, budget_macs=args.budget_macs, budget_ms=args.budget_ms,
                   latency_table=args.latency_table, cost="paper_macs" if args.paper_macs else "macs",
                   grouping=args.grouping, n=args.samples, validate=args.validate, metric=args.metric,
                   reference=args.reference, perceptual=args.perceptual, population=args.population,
                   generations=args.generations, parents=args.parents, n_crossover=args.crossover,
                   n_mutation=args.mutation, p_mutation=args.p_mutation, seed=args.seed, resume=args.resume,
                   progress=not args.no_progress, log=lambda line: print(line, flush=True))
    b, full, v = s["best"], s["full"], s["validation"]
    unit = (lambda c: f"{c:.3g} ms") if s["budget_ms"] is not None else (lambda c: f"{c / 1e6:.4g} M")
    print(f"picked: {b['describe']} ({unit(b['cost'])}; {full['macs'] / b['macs']:.1f}x fewer true MACs than the "
          f"full supernet; {b['paper_macs'] / 1e6:.4g} M as the paper counts), {s['metric']} {b['fitness']:.5g} "
          f"(full supernet {full['fitness']:.5g})")
    if v is not None:
        there = {tuple(f["widths"]): f["validation"] for f in v["finalists"]}
        print(f"on {v['n']} other pairs: picked {there[tuple(b['widths'])]:.5g}, the search's own best "
              f"({v['search_best']['describe']}) {there[tuple(v['search_best']['widths'])]:.5g}")
    for row in s["uniform_at_equal_cost"]:
        u, found = row["uniform"], row["searched"]
        print(f"at <= {unit(u['cost'])}: uniform {u['fitness']:.5g}, searched "
              f"{found['fitness'] if found else float('nan'):.5g}")
    print(f"{s['evaluated']} sub-networks evaluated in {s['generations'] + 1} generations; wrote best.json, "
          f"pareto.json, pareto.png, state.json in {args.out}")


def cmd_finetune(args) -> None:
    from anycost.gan_compression.finetune import FinetuneRun, finetune_config

    cli_args.set_threads(args.threads)
    if args.resume:
        if args.supernet or args.config:
            raise ValueError("--supernet and --config start a new run; a resumed run continues OUT/latest.pt")
        cfg, state = _resumed(args, ("finetune",))
    else:
        if args.supernet is None or args.config is None:
            raise ValueError("--supernet and --config (search's best.json) are needed unless --resume")
        cfg = finetune_config(args.supernet, _read_json(args.config), **_schedule(args))
        state = None
        if args.task is not None and args.task != cfg.task:
            raise ValueError(f"the supernet in {args.supernet} was trained on {cfg.task}, not {args.task}")
    _train(FinetuneRun(cfg, args.out, progress=not args.no_progress), state, "a searched sub-network")


def cmd_export(args) -> None:
    from anycost.gan_compression.finetune import export_subnet

    print(f"wrote {export_subnet(args.supernet, _read_json(args.config), args.out)}")


def _labelled(specs: list[str]) -> list[tuple[str, Path]]:
    """(label, path) of each LABEL=FILE or FILE (labelled by its file stem, or parent/stem where stems repeat)."""
    from anycost.metrics.cli import model_labels

    pairs = [spec.split("=", 1) if "=" in spec else (None, spec) for spec in specs]
    defaults = model_labels([path for _, path in pairs])
    return [(label or default, Path(path)) for (label, path), default in zip(pairs, defaults)]


def cmd_evaluate(args) -> None:
    import json
    from dataclasses import asdict

    import torch

    from anycost.benchmark.peak import measure_peak
    from anycost.fileio import atomic_write
    from anycost.gan_compression.evaluate import (
        evaluation_set,
        latency_by_size,
        latency_markdown,
        layers_markdown,
        markdown,
        outputs,
        score_generators,
    )
    from anycost.gan_compression.latency import layer_times
    from anycost.images import image_grid
    from anycost.models.i2i import load_generator
    from anycost.models.i2i.checkpoints import read_metadata

    cli_args.set_threads(args.threads)
    named = _labelled(args.generators)
    task = args.task or read_metadata(named[0][1]).get("task")
    if task is None:
        raise ValueError(f"{named[0][1]} does not say its task: pass --task")
    models = [(label, load_generator(path)) for label, path in named]
    inputs, targets, reals = evaluation_set(task, args.samples)
    rows = score_generators(models, inputs, targets, reals=reals, batch=args.batch, rounds=args.rounds,
                            calls=args.calls, progress=not args.no_progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    table = markdown(rows, threads, len(inputs), None if targets is not None else len(reals))
    report = {"task": task, "n": len(inputs), "n_reals": len(reals), "threads": threads,
              "generators": [{**r.to_dict(), "path": str(path)} for r, (_, path) in zip(rows, named)]}
    if args.latency_sizes:
        times = latency_by_size([G for _, G in models], args.latency_sizes, args.rounds, calls=args.calls)
        table += "\n" + latency_markdown([r.label for r in rows], [r.macs for r in rows], times, threads)
        report["latency_by_size"] = {str(size): ms for size, ms in times.items()}
    if args.layers:
        size = max(args.latency_sizes, default=inputs.shape[-1])
        peak = measure_peak()
        report["layers"] = {"size": size, "peak_gflops": peak.gflops, "peak_shape": peak.shape, "generators": {}}
        for label, G in models:
            layers = layer_times(G, size)
            table += "\n" + layers_markdown(label, layers, size, peak.gflops)
            report["layers"]["generators"][label] = [asdict(t) for t in layers]
    atomic_write(out / "eval.json", lambda tmp: Path(tmp).write_text(json.dumps(report, indent=1) + "\n"))
    atomic_write(out / "eval.md", lambda tmp: Path(tmp).write_text(table))
    shown = slice(0, 8)
    columns = [inputs[shown], *(outputs(G, inputs[shown]) for _, G in models)]
    labels = ["input", *(label for label, _ in models)]
    if targets is not None:
        columns, labels = [*columns, targets[shown]], [*labels, "target"]
    grid = image_grid([torch.stack(row) for row in zip(*columns)], 64, header=labels)
    grid.save(out / "samples.png")
    print(table + f"wrote {out / 'eval.md'}, eval.json and samples.png")

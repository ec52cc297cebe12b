"""`anycost tune`'s measurements: the styled-conv layer shapes of a generator, every candidate backend of each timed
(`time_call`: warm-up calls, then the median of the repeats) and the fastest recorded in a tuning table
(`anycost.ops.tuning`, which `impl="auto"` follows)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from tqdm.auto import tqdm

from anycost import checks, ops
from anycost.benchmark.generator_bench import latent
from anycost.benchmark.timing import time_call
from anycost.models.stylegan2 import SubnetConfig
from anycost.models.stylegan2.layers import StyledConv
from anycost.ops import _ext, bf16
from anycost.ops.tuning import CANDIDATES, Choice, Shape, Table


def layer_shapes(G, configs: Iterable[SubnetConfig], batches: Sequence[int], precisions: Sequence[str]) -> list[Shape]:
    """The distinct shapes of `G`'s StyledConv calls over `configs` (one batch-1 forward each, forward hooks),
    each for every batch and precision, in the order the forwards meet them."""
    found: dict[tuple, None] = {}  # an ordered set of (c_in, c_out, height, width, upsample)

    def record(module, args, out):
        x = args[0]
        found.setdefault((x.shape[1], args[2], x.shape[2], x.shape[3], module.upsample), None)  # args[2]: c_out

    handles = [m.register_forward_hook(record) for m in G.modules() if isinstance(m, StyledConv)]
    try:
        w = latent(G)
        with torch.inference_mode():
            for config in configs:  # the reference: the shapes are the same, and no tuning table is read
                G(w, config=config, noise="const", impl="ref")
    finally:
        for h in handles:
            h.remove()
    return [Shape(*layer, batch, precision) for layer in found for batch in batches for precision in precisions]


def layer_inputs(shape: Shape, seed: int = 0) -> dict:
    """Random arguments of one StyledConv call of `shape` (demodulation, noise, bias and activation, as the
    generator calls it; for a bf16 shape, bf16 channels_last activations, as the bf16 layers pass them on, so an
    fp32 candidate's time includes its copy to float32)."""
    g = torch.Generator().manual_seed(seed)
    scale = 2 if shape.upsample else 1
    x = torch.randn(shape.batch, shape.c_in, shape.height, shape.width, generator=g)
    return dict(x=bf16.activations(x) if shape.precision == "bf16" else x,
                weight=torch.randn(shape.c_out, shape.c_in, 3, 3, generator=g),
                styles=torch.rand(shape.batch, shape.c_in, generator=g) + 0.5,
                weight_scale=1 / math.sqrt(shape.c_in * 9), demodulate=True, upsample=shape.upsample,
                noise=torch.randn(1, 1, shape.height * scale, shape.width * scale, generator=g),
                noise_strength=torch.tensor([0.1]), bias=torch.zeros(shape.c_out), activate=True)


def time_backends(shape: Shape, repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    """Median ms of every candidate backend of `shape` (`tuning.CANDIDATES`), one after the other. The first
    warm-up call of "bf16" builds its prepacked weight, that of "kernel" on a Winograd layer its transformed weights
    (kernels/cpu/wino_weight_cache.h)."""
    args = layer_inputs(shape)
    with torch.inference_mode():
        return {backend: time_call(lambda b=backend: ops.modulated_conv2d_backend(b, **args), repeats,
                                   warmup).median_ms
                for backend in CANDIDATES[shape.precision]}


def tune(table: Table, G, configs: Iterable[SubnetConfig], batches: Sequence[int] = (1,),
         precisions: Sequence[str] = ("fp32",), repeats: int = 5, warmup: int = 2, progress: bool = True,
         timer: Callable[[Shape, int, int], dict[str, float]] = time_backends) -> dict[Shape, Choice]:
    """Time every shape of `G`'s styled convs over `configs` (`layer_shapes`) with `timer` and record its fastest
    backend in `table` (replacing an older choice of the same shape); the choices made, by shape."""
    checks.check_int("repeats", repeats)
    checks.check_int("warmup", warmup)  # >= 1: a backend's first call builds its prepacked / transformed weight
    for batch in batches:
        checks.check_int("batch", batch)
    unknown = sorted(set(precisions) - set(CANDIDATES))
    if unknown:
        raise ValueError(f"unknown precision {', '.join(map(str, unknown))}: use {','.join(CANDIDATES)}")
    if not ops.NATIVE:
        raise RuntimeError(f"nothing to tune: impl='auto' follows the table only with the native ops ({_ext.reason()})")
    made = {}
    for shape in tqdm(layer_shapes(G, configs, batches, precisions), desc="tune", unit="shape", disable=not progress):
        ms = timer(shape, repeats, warmup)
        made[shape] = table.choices[shape] = Choice(min(ms, key=ms.get), {k: round(v, 4) for k, v in ms.items()},
                                                    torch.get_num_threads())
    return made


def choices_table(choices: dict[Shape, Choice]) -> str:
    """Markdown: one row per shape with the median ms of every backend timed and the winner."""
    lines = ["| c_in->c_out @ input px | upsample | batch | precision | kernel ms | ref ms | bf16 ms | threads | "
             "backend |", "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for s, c in choices.items():
        ms = [f"{c.ms[b]:.3f}" if b in c.ms else "" for b in ("kernel", "ref", "bf16")]
        lines.append(f"| {s.c_in}->{s.c_out} @ {s.height}x{s.width} | {'yes' if s.upsample else 'no'} | {s.batch} | "
                     f"{s.precision} | {' | '.join(ms)} | {c.threads} | **{c.backend}** |")
    return "\n".join(lines)

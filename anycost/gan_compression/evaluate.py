"""Finished image-to-image generators side by side on a task's validation data: quality, cost and CPU latency.

The paper's tables in one run: for every generator its parameters, MACs in both conventions (true, and the
paper's profiler count), FID of its outputs against real images (the offline Inception network), the mean L1
distance to the targets, and its latency at batch 1 (the paper's protocol: warm-up calls, then the mean of the
timed ones; the generators timed in alternating rounds, so a change in machine load falls on all of them).
Ratios are against the first generator (the teacher, as the paper's "original").

What the outputs are compared with (`evaluation_set`): on a paired task the validation targets (FID: validation
outputs vs validation reals, the paper's paired protocol); on an unpaired task, which has no targets, FID is of
the outputs on the validation A images against every real B image, training and validation (the paper's CycleGAN
protocol: test outputs vs the train + test reals), and L1 is to the first generator's outputs (the pseudo pairs
the students learnt from).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

import torch

from anycost.checks import check_int
from anycost.gan_compression.latency import LayerTime, layer_summary
from anycost.gan_compression.tasks import SPLITS, get_task, load_domains, to_rgb, validation_inputs, validation_pairs
from anycost.metrics.fid import FeatureStats, fid
from anycost.models.i2i import I2IConfig, I2IGenerator, macs
from anycost.models.i2i.arch import check_image_size


@dataclass(frozen=True)
class GeneratorScores:
    """One generator's row: `label`, what it costs and how close its outputs are to the targets."""

    label: str
    description: str
    params: int
    macs: int
    paper_macs: int
    fid: float
    l1: float
    latency_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluation_set(task: str, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(inputs, targets, reals) of `task` (see the module docstring): its first `n` validation pairs (inputs,
    targets, reals = the targets), or its first `n` validation A images, no targets, and all its B images."""
    if get_task(task).paired:
        inputs, targets = validation_pairs(task, n)
        return inputs, targets, targets
    reals = torch.cat([to_rgb(load_domains(task, split).b) for split in SPLITS])
    return validation_inputs(task, n), None, reals


@torch.no_grad()
def outputs(G: I2IGenerator, inputs: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """`G` on every input, [n, 3, H, W] in [-1, 1]."""
    return torch.cat([G(inputs[i:i + batch]) for i in range(0, len(inputs), batch)])


@torch.no_grad()
def latencies_ms(models: list[I2IGenerator], x: torch.Tensor, rounds: int = 5, warmup: int = 10,
                 calls: int = 20) -> list[float]:
    """Per model, the median over `rounds` of the mean time of `calls` calls on `x` after `warmup` untimed ones;
    the models take turns within each round."""
    from anycost.benchmark import time_call

    check_int("rounds", rounds, 1)
    check_int("calls", calls, 1)
    per_model: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for G, times in zip(models, per_model):
            timing = time_call(lambda G=G: G(x), calls, warmup)
            times.append(1000 * statistics.fmean(timing.times_s))
    return [statistics.median(times) for times in per_model]


def latency_by_size(models: list[I2IGenerator], sizes, rounds: int = 5, warmup: int = 10,
                    calls: int = 20) -> dict[int, list[float]]:
    """{size: per model the `latencies_ms` of one random `size` px input}: the generators are fully convolutional,
    so they run at any size (a multiple of 4) and their MACs grow with its square, while the per-op overhead does
    not; this shows at which size the MAC cut turns into a speed-up."""
    channels = sorted({G.arch.in_channels for G in models})
    if len(channels) != 1:
        raise ValueError(f"the generators take different input channel counts: {channels}")
    sizes = [check_image_size(size, "latency size") for size in sizes]
    gen = torch.Generator().manual_seed(0)
    times = {}
    with torch.inference_mode():
        for size in sizes:
            x = torch.rand(1, channels[0], size, size, generator=gen) * 2 - 1
            times[size] = latencies_ms(models, x, rounds, warmup, calls)
    return times


def score_generators(models: list[tuple[str, I2IGenerator]], inputs: torch.Tensor, targets: torch.Tensor | None, *,
                     reals: torch.Tensor | None = None, extractor=None, batch: int = 64, rounds: int = 5,
                     warmup: int = 10, calls: int = 20, progress: bool = False) -> list[GeneratorScores]:
    """The rows of `models` ((label, generator) pairs) on `inputs` (see the module docstring): L1 to `targets`
    (None: to the first generator's outputs), FID against `reals` (default: the targets); `extractor` maps
    images in [-1, 1] to Inception features (default: the offline network)."""
    if not models:
        raise ValueError("give at least one generator")
    reals = targets if reals is None else reals
    if reals is None:
        raise ValueError("give the targets, the real images FID compares the outputs with, or both")
    if inputs.ndim != 4 or (targets is not None and inputs.shape != targets.shape):
        raise ValueError(f"inputs {tuple(inputs.shape)} and targets "
                         f"{None if targets is None else tuple(targets.shape)} must be one [n, C, H, W]")
    size = inputs.shape[-1]
    for label, G in models:
        if G.arch.image_size != size or G.arch.in_channels != inputs.shape[1]:
            raise ValueError(f"{label} ({G.arch.describe()}) takes {G.arch.in_channels}-channel {G.arch.image_size} "
                             f"px inputs; these pairs are {inputs.shape[1]}-channel {size} px")
    if extractor is None:
        from anycost.metrics.inception import InceptionFeatures

        extractor = InceptionFeatures(batch_size=batch, progress=progress)

    def features(images: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.as_tensor(extractor(images[i:i + batch])).float().cpu()
                          for i in range(0, len(images), batch)])

    reference = FeatureStats.from_features(features(reals), keep_features=False)
    quality = []
    for _, G in models:
        out = outputs(G.eval(), inputs, batch)
        targets = out if targets is None else targets  # no targets: the first generator's outputs
        quality.append((fid(features(out), reference), (out - targets).abs().double().mean().item()))
    times = latencies_ms([G for _, G in models], inputs[:1], rounds, warmup, calls)
    rows = []
    for (label, G), (fid_value, l1), ms in zip(models, quality, times):
        full = I2IConfig.full(G.arch)
        rows.append(GeneratorScores(label, G.arch.describe(), macs.param_count(G.arch, G.arch.widths), full.macs,
                                    macs.paper_macs(G.arch, G.arch.widths), fid_value, l1, ms))
    return rows


def markdown(rows: list[GeneratorScores], threads: int, n: int, n_reals: int | None = None) -> str:
    """The rows as a table, with each cost and the latency as a ratio to the first row's; `n_reals`: the number
    of real B images of an unpaired task's FID (None: a paired task's)."""
    base = rows[0]
    data = (f"FID and L1 on {n} validation pairs" if n_reals is None else
            f"FID of the outputs on {n} validation A images against {n_reals} real B images, L1 to {base.label}'s "
            "outputs")
    lines = [f"{data}; latency: batch 1, {threads} torch thread(s). Ratios against {base.label}.", "",
             "| generator | params | MACs (true) | MACs (paper) | MAC cut | FID | L1 | latency | speed-up |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.label} | {r.params / 1e3:.1f} K | {r.macs / 1e6:.2f} M | {r.paper_macs / 1e6:.2f} M | "
                     f"{base.macs / r.macs:.1f}x | {r.fid:.2f} | {r.l1:.4f} | {r.latency_ms:.2f} ms | "
                     f"{base.latency_ms / r.latency_ms:.2f}x |")
    return "\n".join(lines) + "\n"


def latency_markdown(labels: list[str], macs_at: list[int], times: dict[int, list[float]], threads: int) -> str:
    """Latency per input size (`latency_by_size`) with each generator's speed-up over the first; `macs_at`: the
    generators' true MACs at their own image size (the MAC cut is the same at every size)."""
    head = " | ".join(f"{label} ms" for label in labels)
    cuts = ", ".join(f"{label} {macs_at[0] / m:.1f}x" for label, m in zip(labels[1:], macs_at[1:]))
    lines = [f"Latency by input size (batch 1, {threads} torch thread(s); MAC cut against {labels[0]}: {cuts}).", "",
             f"| input px | {head} | " + " | ".join(f"{label} speed-up" for label in labels[1:]) + " |",
             "|---:|" + "---:|" * (2 * len(labels) - 1)]
    for size, ms in times.items():
        lines.append(f"| {size} | " + " | ".join(f"{t:.2f}" for t in ms) + " | "
                     + " | ".join(f"{ms[0] / t:.2f}x" for t in ms[1:]) + " |")
    return "\n".join(lines) + "\n"


def layers_markdown(label: str, layers: list[LayerTime], size: int, peak_gflops: float) -> str:
    """Where `label`'s forward goes, by conv kind: each conv timed alone with its instance norm at `size` px,
    GFLOP/s against the fp32 conv peak measured in the same run."""
    total = sum(t.ms for t in layers)
    lines = [f"{label} at {size} px: {total:.2f} ms in {len(layers)} convs (each with its instance norm, timed "
             f"alone); fp32 peak {peak_gflops:.0f} GFLOP/s.", "",
             "| conv kind | convs | MMACs | ms | % of time | GFLOP/s | % of peak |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for kind, k in sorted(layer_summary(layers).items(), key=lambda kv: -kv[1]["ms"]):
        lines.append(f"| {kind} | {k['count']} | {k['macs'] / 1e6:.2f} | {k['ms']:.3f} | "
                     f"{100 * k['ms'] / total:.0f}% | {k['gflops']:.1f} | {100 * k['gflops'] / peak_gflops:.1f}% |")
    return "\n".join(lines) + "\n"

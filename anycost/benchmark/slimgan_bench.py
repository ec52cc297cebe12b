"""Render time per width of a SlimGAN generator: one batch (SlimGAN's issue: 64 images) at every width, the
median of repeated forwards (`time_call`), images/s and the MACs (`SlimConfig.macs`), in a `SlimBenchResult`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import torch

from anycost.benchmark.generator_bench import machine_info
from anycost.benchmark.timing import gflops, time_call
from anycost.checks import check_positive
from anycost.metrics.slimgan import eval_mode, slim_latents
from anycost.models.slimgan import SlimGenerator

SLIM_RESULT_KIND = "anycost-slimgan-bench"
SLIM_RESULT_VERSION = 1
#: The batch SlimGAN's issue times every width at.
SLIM_BATCH = 64


@dataclass
class WidthRow:
    """One width: its channels per stage, MACs of one image, and the median / fastest ms of one batch."""

    width: float
    channels: list[int]
    macs: int
    ms: float
    min_ms: float
    repeats: int

    def images_per_s(self, batch: int) -> float:
        return batch / (self.ms / 1000)

    def gflops(self, batch: int) -> float:
        return gflops(batch * self.macs, self.ms / 1000)


@dataclass
class SlimBenchResult:
    rows: list[WidthRow]
    machine: dict = field(default_factory=dict)

    @property
    def batch(self) -> int:
        return self.machine["batch"]

    def to_dict(self) -> dict:
        return {"kind": SLIM_RESULT_KIND, "version": SLIM_RESULT_VERSION, "machine": self.machine,
                "rows": [asdict(r) for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def run_slimgan_bench(G: SlimGenerator, batch: int = SLIM_BATCH, repeats: int = 5, warmup: int = 1,
                      budget_s: float | None = 10.0, clock: str = "wall", seed: int = 0) -> SlimBenchResult:
    """Time ``G(z, y, width=w)`` for every width of G on one batch of `batch` latents (and uniform classes for a
    conditional G) drawn with `seed`, in eval mode under inference mode, narrowest width first."""
    if not isinstance(G, SlimGenerator):
        raise TypeError(f"G must be a SlimGenerator, got {type(G).__name__}")
    check_positive(batch=batch)
    z, classes = next(slim_latents(G, batch, seed, batch))
    result = SlimBenchResult([], {**machine_info(), "batch": batch, "clock": clock})
    with eval_mode(G), torch.inference_mode():
        for config in G.configs():
            t = time_call(lambda c=config: G(z, classes, width=c), repeats, warmup, budget_s, clock=clock)
            result.rows.append(WidthRow(config.width, list(config.channels), config.macs, t.median_ms,
                                        t.min_s * 1000, len(t.times_s)))
    return result

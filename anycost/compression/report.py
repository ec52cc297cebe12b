"""The compression report: for each method and setting, what it costs in quality and what it saves.

Quality is the distance of the compressed generator's output to the uncompressed one's on the same latents and
the same noise (MSE on [-1, 1] images, the PSNR of that mean MSE over the range 2, and the perceptual distance of
`anycost.metrics.perceptual`), at the full config and at one cheap config (the same widths on both models).
Latency is a ratio of medians measured in one run, batch 1, the two models timed alternately.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch

from anycost.benchmark.timing import time_call
from anycost.compression.kmeans import check_bits, kmeans_quantize
from anycost.compression.pruning import SCOPES, check_keep, check_sparsity, config_for, prune, prune_channels

METHODS = ("prune", "channels", "kmeans")


@dataclass(frozen=True)
class Setting:
    """One method with one value: a sparsity (prune, with its `scope`), a keep ratio (channels) or bits (kmeans)."""

    method: str
    value: float
    scope: str = "global"
    sort: bool = False

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        {"prune": check_sparsity, "channels": check_keep, "kmeans": check_bits}[self.method](self.value)
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")

    @property
    def label(self) -> str:
        if self.method == "prune":
            return f"{self.value:.0%} {self.scope}"
        if self.method == "channels":
            return f"keep {self.value:g}" + (" (re-sorted)" if self.sort else "")
        return f"{self.value} bits"

    @property
    def slug(self) -> str:
        """A file-name stem: prune-global-0.5, channels-0.75(-sorted), kmeans-4bit."""
        if self.method == "prune":
            return f"prune-{self.scope}-{self.value:g}"
        if self.method == "channels":
            return f"channels-{self.value:g}" + ("-sorted" if self.sort else "")
        return f"kmeans-{self.value}bit"

    def apply(self, G):
        if self.method == "prune":
            return prune(G, self.value, self.scope)
        if self.method == "channels":
            return prune_channels(G, self.value, self.sort)
        return kmeans_quantize(G, self.value)


@dataclass
class Row:
    """One line of the report. `distance` maps a config label to {"mse", "psnr", "perceptual"}."""

    method: str
    setting: str
    file_bytes: int
    file_ratio: float
    macs_ratio: float
    latency_ratio: float
    setup_s: float
    distance: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def timed_apply(setting: Setting, G):
    """(compressed generator, wall seconds the compression took)."""
    start = time.perf_counter()
    out = setting.apply(G)
    return out, time.perf_counter() - start


@torch.no_grad()
def distances(G, Gc, configs, n: int = 16, seed: int = 0, perceptual=None, batch: int = 8) -> dict:
    """{config label: {"mse", "psnr", "perceptual"}}: `Gc`'s output at each of `G`'s `configs` (as `config_for`
    maps it) against `G`'s, averaged over `n` latents; z and the noise come from one generator seeded by `seed`."""
    rng = torch.Generator().manual_seed(seed)
    sums = {c: [0.0, 0.0] for c in configs}
    for start in range(0, n, batch):
        b = min(batch, n - start)
        w = G.mapping(torch.randn(b, G.arch.style_dim, generator=rng))
        noise = G.make_noise(b, G.arch.resolution, rng)
        for config in configs:
            ref, out = G(w, config=config, noise=noise), Gc(w, config=config_for(Gc, config), noise=noise)
            sums[config][0] += (out - ref).double().square().mean((1, 2, 3)).sum().item()
            if perceptual is not None:
                sums[config][1] += perceptual(out, ref).double().sum().item()
    result = {}
    for config, (mse, perc) in sums.items():
        mse /= n
        result[config.describe()] = {"mse": mse, "psnr": 10 * math.log10(4 / mse) if mse > 0 else math.inf,
                                     "perceptual": perc / n if perceptual is not None else math.nan}
    return result


@torch.no_grad()
def latency_ratio(G, Gc, rounds: int = 3, repeats: int = 5) -> float:
    """Median forward time of `Gc` over that of `G` at their full configs (same output resolution), batch 1,
    const noise; the two are timed alternately, `rounds` x `repeats` calls each, in this one run."""
    w = G.mapping(torch.randn(1, G.arch.style_dim, generator=torch.Generator().manual_seed(0)))
    times = {0: [], 1: []}
    for _ in range(rounds):
        for i, model in enumerate((G, Gc)):
            times[i] += time_call(lambda m=model: m(w, noise="const"), repeats=repeats, warmup=1).times_s
    return sorted(times[1])[len(times[1]) // 2] / sorted(times[0])[len(times[0]) // 2]


def markdown(rows, configs) -> str:
    """The report table: one line per row, MSE / PSNR / perceptual per config."""
    labels = [c.describe() for c in configs]
    head = ["method", "setting", "file (KiB)", "file ratio", "MACs ratio", "latency ratio", "set-up (s)"]
    head += [f"{label}: {m}" for label in labels for m in ("MSE", "PSNR dB", "perceptual")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.method, r.setting, f"{r.file_bytes / 1024:,.0f}", f"{r.file_ratio:.3f}", f"{r.macs_ratio:.3f}",
                 f"{r.latency_ratio:.2f}", f"{r.setup_s:.2f}"]
        for label in labels:
            d = r.distance[label]
            cells += [f"{d['mse']:.2e}", f"{d['psnr']:.1f}", f"{d['perceptual']:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

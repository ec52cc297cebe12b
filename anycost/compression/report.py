"""The compression report: for each method and setting, what it costs in quality and what it saves.

Quality is the distance of the compressed generator's output to the uncompressed one's on the same latents and
the same noise (MSE on [-1, 1] images, the PSNR of that mean MSE over the range 2, and the perceptual distance of
`anycost.metrics.perceptual`), at the full config and at one cheap config (the same widths on both models);
optionally the FID of the compressed model's samples against the *uncompressed model's* samples on the same
latents and noise (`fid_to_original`: what compression changed in the sample distribution, not a distance to
real data; with fewer samples than the 2048 feature dimensions it is biased upwards, so compare rows of one
report only). Latency is a ratio of medians measured in one run, batch 1, the two models timed alternately.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from anycost.benchmark.timing import time_call
from anycost.compression.int8 import (
    ACTIVATIONS,
    CALIBRATION,
    calibration_latents,
    check_calibration_count,
    int8_layer_count,
    quantize_int8,
)
from anycost.compression.kmeans import check_bits, kmeans_quantize
from anycost.compression.pruning import SCOPES, WEIGHTS, check_keep, check_sparsity, config_for, prune, prune_channels
from anycost.fileio import atomic_write
from anycost.images import pyplot
from anycost.metrics.fid import fid, generator_features

METHODS = ("prune", "channels", "kmeans", "int8", "kmeans-int8")
INT8_METHODS = ("int8", "kmeans-int8")  # the methods whose models run the int8 kernels


@dataclass(frozen=True)
class Setting:
    """One method with one value: a sparsity (prune, with its `scope` and `weights`), a keep ratio (channels), bits
    (kmeans, kmeans-int8) or the number of calibration latents (int8); the int8 methods also take their
    `activations` mode and kmeans-int8 its number of `calibration` latents."""

    method: str
    value: float
    scope: str = "global"
    weights: str = "convs"
    sort: bool = False
    activations: str = "dynamic"
    calibration: int = CALIBRATION

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        {"prune": check_sparsity, "channels": check_keep, "kmeans": check_bits, "kmeans-int8": check_bits,
         "int8": check_calibration_count}[self.method](self.value)
        check_calibration_count(self.calibration)
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.activations not in ACTIVATIONS:
            raise ValueError(f"activations must be one of {', '.join(ACTIVATIONS)}, got {self.activations!r}")

    @property
    def label(self) -> str:
        if self.method == "prune":
            return f"{self.value:.0%} {self.scope}" + (", all weights" if self.weights == "all" else "")
        if self.method == "channels":
            return f"keep {self.value:g}" + (" (re-sorted)" if self.sort else "")
        scales = ", per-layer activation scales" if self.calibrated else ""
        if self.method == "int8":
            return f"calibrated on {self.value} latents{scales}"
        if self.method == "kmeans-int8":
            return f"{self.value} bits, run int8 (calibrated on {self.calibration} latents{scales})"
        return f"{self.value} bits"

    @property
    def slug(self) -> str:
        """A file-name stem: prune-global-0.5(-all), channels-0.75(-sorted), kmeans-4bit, int8(-calibrated),
        kmeans-4bit-int8(-calibrated)."""
        if self.method == "prune":
            return f"prune-{self.scope}-{self.value:g}" + ("-all" if self.weights == "all" else "")
        if self.method == "channels":
            return f"channels-{self.value:g}" + ("-sorted" if self.sort else "")
        if self.method == "int8":
            return "int8" + ("-calibrated" if self.calibrated else "")
        if self.method == "kmeans-int8":
            return f"kmeans-{self.value}bit-int8" + ("-calibrated" if self.calibrated else "")
        return f"kmeans-{self.value}bit"

    @property
    def calibrated(self) -> bool:
        return self.method in INT8_METHODS and self.activations == "calibrated"

    def apply(self, G, seed: int = 1):
        """The compressed generator; `seed` draws int8's calibration latents (`int8.calibration_latents`)."""
        if self.method == "prune":
            return prune(G, self.value, self.scope, self.weights)
        if self.method == "channels":
            return prune_channels(G, self.value, self.sort)
        if self.method == "int8":
            return quantize_int8(G, calibration_latents(G, self.value, seed), activations=self.activations)
        if self.method == "kmeans-int8":
            return quantize_int8(kmeans_quantize(G, self.value), calibration_latents(G, self.calibration, seed),
                                 activations=self.activations)
        return kmeans_quantize(G, self.value)


@dataclass
class Row:
    """One line of the report. `distance` maps a config label to {"mse", "psnr", "perceptual"}, `fid` a config
    label to the FID to the original (empty when not measured), `int8_layers` a config label to the number of
    3x3 convs that run int8 and of those run in all (int8 rows only)."""

    method: str
    setting: str
    file_bytes: int
    file_ratio: float
    macs_ratio: float
    latency_ratio: float
    setup_s: float
    distance: dict = field(default_factory=dict)
    fid: dict = field(default_factory=dict)
    int8_layers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def timed(fn, *args, **kwargs):
    """(fn(*args, **kwargs), wall seconds it took): the set-up time of a compression or a fine-tune."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
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


def original_features(G, configs, n: int, seed: int, extractor) -> dict:
    """{config label: features [n, D] of `G`'s `n` samples at that config} (z and noise seeded by `seed`): the
    reference of `fid_to_original`."""
    return {c.describe(): generator_features(G, c, n, seed, extractor=extractor) for c in configs}


def fid_to_original(Gc, configs, reference: dict, seed: int, extractor) -> dict:
    """{config label: FID of `Gc`'s samples at that config (as `config_for` maps it) against the original's
    `reference` features of the same latents and noise (same `seed`, same count)}."""
    return {c.describe(): fid(generator_features(Gc, config_for(Gc, c), len(reference[c.describe()]), seed,
                                                 extractor=extractor), reference[c.describe()])
            for c in configs}


@dataclass
class Measure:
    """How every row of one report is measured against the original `G`: distances over `n` latents of `seed`
    at `configs`, latency over `rounds`, the FID to the original over `fid_n` samples (0: not measured) with
    `extractor`."""

    G: torch.nn.Module
    configs: list
    n: int
    seed: int
    rounds: int
    dense_bytes: int
    perceptual: object = None
    fid_n: int = 0
    extractor: object = None
    _reference: dict | None = field(default=None, init=False, repr=False)  # the original's FID features

    def original(self) -> Row:
        """The uncompressed row: every distance zero by definition."""
        zero = {c.describe(): {"mse": 0.0, "psnr": math.inf, "perceptual": 0.0} for c in self.configs}
        fids = {c.describe(): 0.0 for c in self.configs} if self.fid_n else {}
        return Row("none", "uncompressed", self.dense_bytes, 1.0, 1.0, 1.0, 0.0, zero, fids)

    def row(self, method: str, setting: str, Gc, file_bytes: int, setup_s: float) -> Row:
        """The row of the compressed `Gc`, saved in `file_bytes`, made in `setup_s` seconds."""
        G = self.G
        row = Row(method, setting, file_bytes, file_bytes / self.dense_bytes, Gc.full_config.macs / G.full_config.macs,
                  latency_ratio(G, Gc, self.rounds), setup_s,
                  distances(G, Gc, self.configs, self.n, self.seed, self.perceptual))
        if self.fid_n:
            if self._reference is None:  # the original's samples, once per report
                self._reference = original_features(G, self.configs, self.fid_n, self.seed, self.extractor)
            row.fid = fid_to_original(Gc, self.configs, self._reference, self.seed, self.extractor)
        if method in INT8_METHODS:
            row.int8_layers = {c.describe(): list(int8_layer_count(Gc, config_for(Gc, c))) for c in self.configs}
        return row


def _setting_cell(row: Row) -> str:
    """The setting, and for int8 how many of the 3x3 convs run int8 at each config (the rest run fp32)."""
    if not row.int8_layers:
        return row.setting
    counts = "; ".join(f"{k} of {n} at {label}" for label, (k, n) in row.int8_layers.items())
    return f"{row.setting} (3x3 convs run in int8: {counts})"


def markdown(rows, configs) -> str:
    """The report table: one line per row, MSE / PSNR / perceptual (and FID to the original when measured) per
    config."""
    labels = [c.describe() for c in configs]
    with_fid = any(r.fid for r in rows)
    metrics = ("MSE", "PSNR dB", "perceptual") + (("FID to original",) if with_fid else ())
    head = ["method", "setting", "file (KiB)", "file ratio", "MACs ratio", "latency ratio", "set-up (s)"]
    head += [f"{label}: {m}" for label in labels for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.method, _setting_cell(r), f"{r.file_bytes / 1024:,.0f}", f"{r.file_ratio:.3f}",
                 f"{r.macs_ratio:.3f}", f"{r.latency_ratio:.2f}", f"{r.setup_s:.2f}"]
        for label in labels:
            d = r.distance[label]
            cells += [f"{d['mse']:.2e}", f"{d['psnr']:.1f}", f"{d['perceptual']:.4f}"]
            if with_fid:
                cells.append(f"{r.fid[label]:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, configs, path) -> Path | None:
    """report.png: each compressed row's PSNR to the original at the first config against its file ratio (left)
    and its latency ratio (right), one colour per method (exact copies, infinite PSNR, are left out); None when
    matplotlib is missing. Written atomically."""
    plt = pyplot()
    if plt is None:
        return None
    label = configs[0].describe()
    points = [(r, r.distance[label]["psnr"]) for r in rows if r.method != "none"]
    points = [(r, p) for r, p in points if math.isfinite(p)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, x_of, x_label in ((axes[0], lambda r: r.file_ratio, "file size / uncompressed"),
                              (axes[1], lambda r: r.latency_ratio, "latency / uncompressed")):
        for j, method in enumerate(dict.fromkeys(r.method for r, _ in points)):
            mine = [(r, p) for r, p in points if r.method == method]
            ax.scatter([x_of(r) for r, _ in mine], [p for _, p in mine], color=f"C{j}", label=method)
            for r, p in mine:
                ax.annotate(r.setting.split(" (")[0], (x_of(r), p), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        ax.axvline(1.0, color="gray", lw=0.8, ls=":")
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"PSNR to the original, {label} (dB)")
    if points:
        axes[0].legend(fontsize=8)
    fig.suptitle("compression: quality against size and speed (up and left is better)")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path

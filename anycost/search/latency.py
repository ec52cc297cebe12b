"""A per-layer latency lookup table: measure each layer once, predict any sub-generator's latency.

The synthesis network (what ``G(w, config=...)`` runs once w is known) is a chain of layers whose
cost depends only on the layer type, its output resolution and its input/output widths:

- ``conv/4/{c_in}/{c_out}``: ``conv1`` (3x3 at 4 px);
- ``upconv/{res}/{c_in}/{c_out}``: the upsampling 3x3 conv of the block at `res` px (input res/2);
- ``conv/{res}/{c_in}/{c_out}``: the regular 3x3 conv of that block;
- ``rgb/4/{c}``, ``rgb_skip/{res}/{c}``: the ToRGB layers (with the skip upsampling above 4 px).

`measure_latency_table` times every such layer for every pair of widths the search space can give
it (`anycost.search.space.width_choices`), batch 1, constant noise, with the implementation the
generator would use (``impl="auto"``: the native kernels where built), on this machine and its
current torch thread count; the mapping network is timed too (``mapping``, not part of `predict`'s
default: it runs once per w, not per config). `LatencyTable.predict(config)` is the sum over the
config's layers, in ms. The table is JSON (`save` / `load`) and records the machine it was taken on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from anycost.fileio import atomic_write
from anycost.models.stylegan2 import UNIFORM_RATIOS, GeneratorArch, SubnetConfig, n_layers

TABLE_KIND = "anycost-latency-table"
TABLE_VERSION = 1


def layer_keys(config: SubnetConfig) -> list[str]:
    """Table keys of the layers `config`'s synthesis forward runs, in order."""
    w = config.widths
    keys = [f"conv/4/{w[0]}/{w[1]}", f"rgb/4/{w[1]}"]
    for k in range((len(w) - 2) // 2):
        res = 8 * 2**k
        keys += [f"upconv/{res}/{w[1 + 2 * k]}/{w[2 + 2 * k]}", f"conv/{res}/{w[2 + 2 * k]}/{w[3 + 2 * k]}",
                 f"rgb_skip/{res}/{w[3 + 2 * k]}"]
    return keys


@dataclass
class LatencyTable:
    """Measured ms per layer key (see the module docstring) for one architecture on one machine.

    Other families subclass it (`gan_compression.latency.I2ILatencyTable`) with their own `arch_type`,
    `config_type` and `layer_keys`; the prediction, breakdown and JSON file are shared."""

    arch_type = GeneratorArch
    config_type = SubnetConfig
    layer_keys = staticmethod(layer_keys)

    arch: GeneratorArch
    entries: dict[str, float]
    impl: str = "auto"
    threads: int = 1
    mapping_ms: float = 0.0
    machine: dict = field(default_factory=dict)
    #: What timing a layer alone costs per layer beyond its share of a whole forward (its Python call, where the
    #: forward is one native call), subtracted once per layer by `predict` (which never goes below a tenth of the
    #: entries' sum); 0 where the forward runs layer by layer.
    call_overhead_ms: float = 0.0

    def breakdown(self, config: SubnetConfig) -> list[tuple[str, float]]:
        """(key, ms) of every layer of `config`."""
        if not isinstance(config, self.config_type):
            raise TypeError(f"config must be a {self.config_type.__name__}, got {type(config).__name__}")
        if config.arch != self.arch:
            raise ValueError(f"config is for {config.arch}, this table is for {self.arch}")
        out = []
        for key in self.layer_keys(config):
            if key not in self.entries:
                raise ValueError(f"layer {key} of this config was not measured (the table covers the widths of "
                                 f"its search space only): rebuild the table with those widths")
            out.append((key, self.entries[key]))
        return out

    def predict(self, config: SubnetConfig, include_mapping: bool = False) -> float:
        """Predicted ms of ``G(w, config=config)`` for one image (plus the mapping when asked): the sum of its
        layers' entries, less `call_overhead_ms` per layer (at least a tenth of the sum)."""
        layers = self.breakdown(config)
        total = sum(ms for _, ms in layers)
        total = max(total - self.call_overhead_ms * len(layers), 0.1 * total)
        return total + (self.mapping_ms if include_mapping else 0.0)

    __call__ = predict

    def to_dict(self) -> dict:
        return {"kind": TABLE_KIND, "version": TABLE_VERSION, "arch": self.arch.to_dict(), "impl": self.impl,
                "threads": self.threads, "mapping_ms": self.mapping_ms, "call_overhead_ms": self.call_overhead_ms,
                "machine": self.machine, "entries": dict(sorted(self.entries.items()))}

    @classmethod
    def from_dict(cls, data: dict) -> LatencyTable:
        if not isinstance(data, dict) or data.get("kind") != TABLE_KIND:
            raise ValueError(f"not an anycost latency table (kind != {TABLE_KIND!r})")
        if data.get("version") != TABLE_VERSION:
            raise ValueError(f"unsupported latency table version {data.get('version')!r}")
        entries = {str(k): float(v) for k, v in data["entries"].items()}
        if any(not v > 0 for v in entries.values()):
            raise ValueError("latency table entries must be positive")
        try:
            arch = cls.arch_type.from_dict(data["arch"])
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"the table is not of a {cls.arch_type.__name__} generator (a table of another "
                             f"generator family?): {err}") from None
        overhead = float(data.get("call_overhead_ms", 0.0))  # tables from before the field: 0
        if not 0 <= overhead < float("inf"):
            raise ValueError(f"call_overhead_ms must be a finite number >= 0, got {overhead}")
        return cls(arch, entries, data.get("impl", "auto"), data.get("threads", 1),
                   float(data.get("mapping_ms", 0.0)), data.get("machine", {}), overhead)

    def save(self, path) -> Path:
        text = json.dumps(self.to_dict(), indent=1)
        return atomic_write(path, lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, path) -> LatencyTable:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data)


def _jobs(G, choices, max_layers: int):
    """(key, module, kind, res, c_in, c_out) of every layer and width pair up to `max_layers` entries;
    ``G=None`` gives None for the modules (to list the keys only)."""
    jobs = []
    for i in range(1, max_layers):
        res = 2 ** (i // 2 + 2)
        if i == 1:
            conv, kind = (None if G is None else G.conv1), "conv"
            rgb, rgb_kind = (None if G is None else G.to_rgb1), "rgb"
        else:
            k, second = divmod(i - 2, 2)
            conv, kind = (None if G is None else G.convs[i - 2]), ("conv" if second else "upconv")
            rgb, rgb_kind = ((None if G is None else G.to_rgbs[k]), "rgb_skip") if second else (None, None)
        for c_in in choices[i - 1]:
            for c_out in choices[i]:
                jobs.append((f"{kind}/{res}/{c_in}/{c_out}", conv, kind, res, c_in, c_out))
        if rgb_kind is not None:
            for c in choices[i]:
                jobs.append((f"{rgb_kind}/{res}/{c}", rgb, rgb_kind, res, c, 3))
    return jobs


def missing_keys(table: LatencyTable, ratios: Sequence[float], resolution: int) -> list[str]:
    """Layer keys a search over `ratios` at `resolution` can need that `table` has not measured."""
    from anycost.search.space import width_choices

    keys = [job[0] for job in _jobs(None, width_choices(table.arch, ratios), n_layers(resolution))]
    return [k for k in dict.fromkeys(keys) if k not in table.entries]


def measure_latency_table(G, ratios: Sequence[float] = UNIFORM_RATIOS, resolution: int | None = None,
                          impl: str = "auto", repeats: int = 5, warmup: int = 1, clock: str = "wall",
                          seed: int = 0, progress: bool = False) -> LatencyTable:
    """Time every layer of `G` (up to `resolution`, default the model's) at every width pair of the
    search space of `ratios` once (median of `repeats` calls after `warmup`), batch 1."""
    from anycost.benchmark import machine_info, time_call
    from anycost.search.space import width_choices

    arch = G.arch
    resolution = arch.resolution if resolution is None else resolution
    if resolution not in arch.resolutions:
        raise ValueError(f"unknown resolution {resolution!r}: this generator can output {list(arch.resolutions)}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    choices = width_choices(arch, ratios)
    param = next(G.parameters())
    device, dtype = param.device, param.dtype
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    jobs = _jobs(G, choices, n_layers(resolution))
    if progress:
        from tqdm.auto import tqdm

        jobs = tqdm(jobs, desc="latency table", unit="layer")
    entries: dict[str, float] = {}
    style = randn(1, arch.style_dim)
    with torch.inference_mode():
        for key, module, kind, res, c_in, c_out in jobs:
            if key in entries:
                continue
            if kind in ("conv", "upconv"):
                size = res // 2 if kind == "upconv" else res
                x, noise = randn(1, c_in, size, size), randn(1, 1, res, res)

                def call(module=module, x=x, c_out=c_out, noise=noise):
                    return module(x, style, c_out, noise, impl)
            else:
                x = randn(1, c_in, res, res)
                skip = randn(1, 3, res // 2, res // 2) if kind == "rgb_skip" else None

                def call(module=module, x=x, skip=skip):
                    return module(x, style, skip, impl)
            entries[key] = time_call(call, repeats, warmup, clock=clock).median_s * 1000
        z = randn(1, arch.style_dim)
        mapping_ms = time_call(lambda: G.mapping(z), repeats, warmup, clock=clock).median_s * 1000
    machine = machine_info()
    machine["device"] = str(device)
    return LatencyTable(arch, entries, impl, torch.get_num_threads(), mapping_ms, machine)

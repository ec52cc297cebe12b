"""`SubnetConfig`: one sub-generator of a `GeneratorArch`, a frozen value object (no model state).

It picks an output resolution plus one channel width per layer (layers counted as in `arch`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anycost.models.stylegan2.macs as macs
from anycost.jsonrecord import check_record, loads_object
from anycost.models.stylegan2.arch import UNIFORM_RATIOS, GeneratorArch, layer_resolution, n_layers

CONFIG_VERSION = 1


@dataclass(frozen=True)
class SubnetConfig:
    """One sub-generator: output resolution and the width of every layer up to it.

    Build one with `full`, `uniform` or `flexible` (or ``Generator.subnet``). It is validated on
    construction, hashable, comparable and JSON-serialisable; `macs` and `paper_macs` give its cost.
    """

    arch: GeneratorArch
    resolution: int
    widths: tuple[int, ...]

    def __post_init__(self):
        if not isinstance(self.arch, GeneratorArch):
            raise TypeError(f"arch must be a GeneratorArch, got {type(self.arch).__name__}")
        if self.resolution not in self.arch.resolutions:
            raise ValueError(
                f"unknown resolution {self.resolution!r}: this generator can output {list(self.arch.resolutions)}"
            )
        widths = tuple(self.widths)
        object.__setattr__(self, "widths", widths)
        expected = n_layers(self.resolution)
        if len(widths) != expected:
            raise ValueError(f"{self.resolution} px needs {expected} layer widths, got {len(widths)}")
        for i, (width, full) in enumerate(zip(widths, self.arch.full_widths)):
            if not isinstance(width, int) or isinstance(width, bool):
                raise TypeError(f"width of layer {i} must be an int, got {width!r}")
            if not 1 <= width <= full:
                raise ValueError(f"width of layer {i} ({layer_resolution(i)} px) must be in [1, {full}], got {width}")

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def full(cls, arch: GeneratorArch, resolution: int | None = None) -> SubnetConfig:
        resolution = arch.resolution if resolution is None else resolution
        return cls(arch, resolution, arch.full_widths[: _layers_checked(arch, resolution)])

    @classmethod
    def uniform(cls, arch: GeneratorArch, ratio: float, resolution: int | None = None) -> SubnetConfig:
        """Every layer at `ratio` of the base widths, with the official formula and channel cap."""
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
        resolution = arch.resolution if resolution is None else resolution
        count = _layers_checked(arch, resolution)
        return cls(arch, resolution, tuple(arch.channels(layer_resolution(i), ratio) for i in range(count)))

    @classmethod
    def flexible(cls, arch: GeneratorArch, widths, resolution: int | None = None) -> SubnetConfig:
        """One width per layer; the resolution defaults to the one the number of widths implies."""
        widths = tuple(widths)
        if resolution is None:
            if len(widths) < 2 or len(widths) % 2:
                raise ValueError(f"cannot infer a resolution from {len(widths)} widths (need an even count >= 2)")
            resolution = 2 ** ((len(widths) + 2) // 2)
        return cls(arch, resolution, widths)

    @classmethod
    def from_ratios(cls, arch: GeneratorArch, ratios, resolution: int | None = None) -> SubnetConfig:
        """One ratio of the full width per layer: ``max(1, int(ratio * full))``."""
        ratios = tuple(ratios)
        for i, r in enumerate(ratios):
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r <= 1:
                raise ValueError(f"ratio of layer {i} must be in (0, 1], got {r!r}")
        if len(ratios) > len(arch.full_widths):
            raise ValueError(f"{len(ratios)} ratios given, the model has only {len(arch.full_widths)} layers")
        return cls.flexible(arch, [max(1, int(r * full)) for r, full in zip(ratios, arch.full_widths)], resolution)

    # -- derived values ----------------------------------------------------------------------
    @property
    def is_full(self) -> bool:
        return self.widths == self.arch.full_widths[: len(self.widths)]

    @property
    def ratios(self) -> tuple[float, ...]:
        """Width of every layer as a fraction of its full width."""
        return tuple(w / f for w, f in zip(self.widths, self.arch.full_widths))

    @property
    def macs(self) -> int:
        """Exact multiply-accumulates of one image (convs, linears and FIR filters)."""
        return macs.true_macs(self.arch, self.widths)

    @property
    def paper_macs(self) -> int:
        """The count of the paper's profiler on the official code (see `macs.paper_macs`)."""
        return macs.paper_macs(self.arch, self.widths)

    def describe(self) -> str:
        if self.is_full:
            kind = "full"
        else:
            # The trained ratios first, then any ratio one of its layers has (a uniform config of a finer ratio).
            candidates = dict.fromkeys(UNIFORM_RATIOS + tuple(sorted(set(self.ratios))))
            uniform = [r for r in candidates if SubnetConfig.uniform(self.arch, r, self.resolution) == self]
            kind = f"ratio {uniform[0]:g}" if uniform else "flexible"
        return f"{self.resolution} px, {kind}"

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": CONFIG_VERSION,
            "arch": self.arch.to_dict(),
            "resolution": self.resolution,
            "widths": list(self.widths),
        }

    @classmethod
    def from_dict(cls, data: dict) -> SubnetConfig:
        data = check_record(data, "SubnetConfig", CONFIG_VERSION, ("arch", "resolution", "widths"))
        return cls(GeneratorArch.from_dict(data["arch"]), data["resolution"], tuple(data["widths"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> SubnetConfig:
        return cls.from_dict(loads_object(text, "SubnetConfig"))


def _layers_checked(arch: GeneratorArch, resolution: int) -> int:
    if resolution not in arch.resolutions:
        raise ValueError(f"unknown resolution {resolution!r}: this generator can output {list(arch.resolutions)}")
    return n_layers(resolution)


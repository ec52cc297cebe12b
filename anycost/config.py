"""Architecture and sub-generator configurations: frozen value objects, no model state.

`GeneratorArch` describes a StyleGAN2 config-e/f style generator (what its weights look like).
`SubnetConfig` picks one sub-generator of it: an output resolution plus one channel width per layer.
Layers are counted as in the official Anycost GAN code: entry 0 is the constant input, entry 1 the
output of ``conv1``, then two entries per resolution from 8 px up (the upsampling conv and the
regular conv of that block), so a 1024 px generator has 18 entries.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property

#: Channels of the official code before the channel multiplier, per resolution.
BASE_CHANNELS = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
#: The channel ratios an Anycost GAN is trained with.
UNIFORM_RATIOS = (0.25, 0.5, 0.75, 1.0)
#: Smallest output resolution a sub-generator may stop at.
MIN_RESOLUTION = 8
CONFIG_VERSION = 1


def log2_int(value: int, what: str) -> int:
    """Exact base-2 logarithm of a power of two, or a ValueError naming `what`."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two, got {value!r}")
    return value.bit_length() - 1


def n_layers(resolution: int) -> int:
    """Number of per-layer widths of a sub-generator at `resolution` (18 at 1024 px)."""
    return 2 * log2_int(resolution, "resolution") - 2


def layer_resolution(layer: int) -> int:
    """Spatial size of the feature map produced by width entry `layer`."""
    return 2 ** (layer // 2 + 2)


@dataclass(frozen=True)
class GeneratorArch:
    """Shape of a StyleGAN2 generator: what the weights of one trained model look like."""

    resolution: int
    channel_multiplier: float = 2
    channel_max: int = 512
    style_dim: int = 512
    n_mlp: int = 8
    lr_mlp: float = 0.01

    def __post_init__(self):
        log2_int(self.resolution, "resolution")
        if not 8 <= self.resolution <= 1024:
            raise ValueError(f"resolution must be between 8 and 1024, got {self.resolution}")
        if not self.channel_multiplier > 0:
            raise ValueError(f"channel_multiplier must be positive, got {self.channel_multiplier}")
        for name in ("channel_max", "style_dim", "n_mlp"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.channels(self.resolution) < 1:
            raise ValueError(f"channel_multiplier {self.channel_multiplier} leaves no channel at {self.resolution} px")

    def channels(self, res: int, ratio: float = 1.0) -> int:
        """Official width formula: ``min(channel_max, int(BASE[res] * ratio * multiplier))``."""
        return min(self.channel_max, int(BASE_CHANNELS[res] * ratio * self.channel_multiplier))

    @property
    def n_styles(self) -> int:
        """Number of W+ entries (18 at 1024 px)."""
        return n_layers(self.resolution)

    @property
    def n_noises(self) -> int:
        """Number of noise inputs (17 at 1024 px): conv1, then two per block."""
        return self.n_styles - 1

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Resolutions a sub-generator may output, smallest first."""
        return tuple(2**k for k in range(MIN_RESOLUTION.bit_length() - 1, self.resolution.bit_length()))

    @cached_property
    def full_widths(self) -> tuple[int, ...]:
        """Full width of every layer of the model."""
        return tuple(self.channels(layer_resolution(i)) for i in range(n_layers(self.resolution)))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GeneratorArch:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator architecture fields: {sorted(unknown)}")
        return cls(**data)


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
        from anycost.macs import true_macs

        return true_macs(self)

    @property
    def paper_macs(self) -> int:
        """The count of the paper's profiler on the official code (see `anycost.macs.paper_macs`)."""
        from anycost.macs import paper_macs

        return paper_macs(self)

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
        if not isinstance(data, dict):
            raise ValueError(f"a SubnetConfig must be a JSON object, got {type(data).__name__}")
        version = data.get("version")
        if version != CONFIG_VERSION:
            raise ValueError(f"unsupported SubnetConfig version {version!r} (this anycost reads {CONFIG_VERSION})")
        missing = {"arch", "resolution", "widths"} - set(data)
        if missing:
            raise ValueError(f"SubnetConfig JSON lacks {sorted(missing)}")
        return cls(GeneratorArch.from_dict(data["arch"]), data["resolution"], tuple(data["widths"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> SubnetConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid SubnetConfig JSON: {err}") from None
        return cls.from_dict(data)


def _layers_checked(arch: GeneratorArch, resolution: int) -> int:
    if resolution not in arch.resolutions:
        raise ValueError(f"unknown resolution {resolution!r}: this generator can output {list(arch.resolutions)}")
    return n_layers(resolution)


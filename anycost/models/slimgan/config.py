"""`SlimConfig`: one width of a slimmable generator, a frozen value (no model state) that follows
`anycost.subnet.SubnetLike`: its cost (`macs`), a JSON round trip and a one-line description."""

from __future__ import annotations

import json
from dataclasses import dataclass

from anycost.jsonrecord import check_record, loads_object
from anycost.models.slimgan.arch import SlimArch
from anycost.models.slimgan.macs import generator_macs

CONFIG_VERSION = 1


@dataclass(frozen=True)
class SlimConfig:
    """Width `width` (one of ``arch.widths``) of the generator `arch`; pass it to the generator as `width`."""

    arch: SlimArch
    width: float

    def __post_init__(self):
        if not isinstance(self.arch, SlimArch):
            raise TypeError(f"arch must be a SlimArch, got {type(self.arch).__name__}")
        # The stored value is the arch's own float, so equal widths compare and hash equal.
        object.__setattr__(self, "width", self.arch.widths[self.arch.width_index(self.width)])

    @classmethod
    def all(cls, arch: SlimArch) -> tuple[SlimConfig, ...]:
        """Every width of `arch`, narrowest first."""
        return tuple(cls(arch, w) for w in arch.widths)

    @property
    def index(self) -> int:
        """Position of the width in ``arch.widths`` (which switchable BN it uses)."""
        return self.arch.width_index(self.width)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of every stage at this width."""
        return self.arch.width_channels(self.width)

    @property
    def macs(self) -> int:
        """Exact multiply-accumulates of one sample: linear, convs and transposed convs (see `macs`)."""
        return generator_macs(self.arch, self.width)

    def describe(self) -> str:
        return f"slimgan {self.arch.backbone} {self.arch.resolution} px, width {self.width:g}x {list(self.channels)}"

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"version": CONFIG_VERSION, "arch": self.arch.to_dict(), "width": self.width}

    @classmethod
    def from_dict(cls, data: dict) -> SlimConfig:
        data = check_record(data, "SlimConfig", CONFIG_VERSION, ("arch", "width"))
        return cls(SlimArch.from_dict(data["arch"]), data["width"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> SlimConfig:
        return cls.from_dict(loads_object(text, "SlimConfig"))

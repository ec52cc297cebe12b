"""`I2IConfig`: one sub-network of an `I2IArch` supernet, a frozen value (no model state).

It gives every layer of the arch a width (same order as `I2IArch.widths`): a multiple of the arch's step, at
most the layer's width there. Its cost is at the arch's `image_size`. It follows `anycost.subnet.SubnetLike`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anycost.models.i2i.macs as macs
from anycost.jsonrecord import check_record, loads_object
from anycost.models.i2i.arch import I2IArch

CONFIG_VERSION = 1


@dataclass(frozen=True)
class I2IConfig:
    """A sub-network: one width per layer of `arch`. Validated on construction, hashable, JSON-serialisable.

    Build one with `full`, `uniform` or the constructor (``I2IConfig(arch, widths)``); pass it to the
    generator's forward (``G(x, config=c)``) or to `anycost.models.i2i.export`.
    """

    arch: I2IArch
    widths: tuple[int, ...]

    def __post_init__(self):
        if not isinstance(self.arch, I2IArch):
            raise TypeError(f"arch must be an I2IArch, got {type(self.arch).__name__}")
        widths = tuple(self.widths)
        object.__setattr__(self, "widths", widths)
        names, full = self.arch.layer_names, self.arch.widths
        if len(widths) != len(full):
            raise ValueError(f"this arch needs {len(full)} widths (stem, down1, down2, {self.arch.n_blocks} "
                             f"residual blocks, up1, up2), got {len(widths)}")
        step = self.arch.step
        for name, width, most in zip(names, widths, full):
            if not isinstance(width, int) or isinstance(width, bool):
                raise TypeError(f"width of layer {name!r} must be an int, got {width!r}")
            if width > most:
                raise ValueError(f"width of layer {name!r} is {width}, above the supernet's {most}")
            if width < step or width % step:
                raise ValueError(f"width of layer {name!r} must be a positive multiple of {step}, got {width}")

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def full(cls, arch: I2IArch) -> I2IConfig:
        return cls(arch, arch.widths)

    @classmethod
    def smallest(cls, arch: I2IArch) -> I2IConfig:
        """Every layer one step wide."""
        return cls(arch, (arch.step,) * len(arch.widths))

    @classmethod
    def uniform(cls, arch: I2IArch, ratio: float) -> I2IConfig:
        """Every layer at `ratio` of its width, rounded down to a multiple of the step (at least one step)."""
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
        step = arch.step
        return cls(arch, tuple(max(step, int(ratio * w) // step * step) for w in arch.widths))

    # -- derived values ----------------------------------------------------------------------
    @property
    def is_full(self) -> bool:
        return self.widths == self.arch.widths

    @property
    def macs(self) -> int:
        """True multiply-accumulates of one `arch.image_size` px image (see `anycost.models.i2i.macs`)."""
        return macs.true_macs(self.arch, self.widths)

    @property
    def paper_macs(self) -> int:
        """The GAN Compression paper's profiler count (transposed convs at their output size)."""
        return macs.paper_macs(self.arch, self.widths)

    @property
    def params(self) -> int:
        """Parameters of this sub-network once exported (weights and biases)."""
        return macs.param_count(self.arch, self.widths)

    def describe(self) -> str:
        w = self.widths
        blocks = ",".join(map(str, w[3:-2]))
        kind = "full" if self.is_full else f"{w[0]}/{w[1]}/{w[2]} blocks {blocks} up {w[-2]}/{w[-1]}"
        return f"{self.arch.image_size} px, {kind}, {self.macs / 1e9:.3g} G MACs"

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"version": CONFIG_VERSION, "arch": self.arch.to_dict(), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict) -> I2IConfig:
        data = check_record(data, "I2IConfig", CONFIG_VERSION, ("arch", "widths"))
        if not isinstance(data["widths"], list):
            raise ValueError(f"I2IConfig widths must be a list, got {type(data['widths']).__name__}")
        return cls(I2IArch.from_dict(data["arch"]), tuple(data["widths"]))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> I2IConfig:
        return cls.from_dict(loads_object(text, "I2IConfig"))

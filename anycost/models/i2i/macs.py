"""Multiply-accumulates and parameters of one image through a ResNet image-to-image generator.

Both counts come from one list of the network's convs (`conv_specs`), named like the generator's modules.
A conv's MACs are its weight multiplies per position, ``c_out * c_in / groups * k * k``, times the number of
positions it runs at; bias adds, instance norms (no affine parameters), ReLU, tanh, padding and the residual
adds count nothing. The two counts differ only in the positions of the stride-2 transposed convs:

* `true_macs`: the arithmetic the model needs. A transposed conv counts at its *input* size: every input
  pixel is multiplied by the whole ``k x k x c_in x c_out`` kernel and scattered into the output. (This
  includes the taps a padding of 1 crops at the top and left border, ``(3H)^2 - (3H-1)^2`` of the
  ``(3H)^2`` per channel pair, as a direct scatter computes them.) 49.55 G for the paper's ngf 64 generator.
* `paper_macs`: what the GAN Compression paper reports (56.8 G for that model): its profiler counts every
  conv, transposed ones included, as ``output positions x c_in / groups x k x k x c_out``, so the transposed
  convs count at their output size, 4x their real cost. Use it only to compare with the paper's tables.

`param_count` is the number of weights and biases (11,378,179 for the paper's model: 11.378 M).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from anycost.models.i2i.arch import I2IArch, check_image_size


@dataclass(frozen=True)
class ConvSpec:
    """One conv of the network: `name` is its module in `I2IGenerator`; sizes are square sides in px."""

    name: str
    c_in: int
    c_out: int
    kernel: int
    size_in: int
    size_out: int
    groups: int = 1
    transposed: bool = False

    @property
    def kernel_macs(self) -> int:
        """Multiplies of one position: per output pixel (a conv) or per input pixel (a transposed conv)."""
        return self.c_out * (self.c_in // self.groups) * self.kernel * self.kernel

    @property
    def true_macs(self) -> int:
        positions = self.size_in if self.transposed else self.size_out
        return positions * positions * self.kernel_macs

    @property
    def paper_macs(self) -> int:
        return self.size_out * self.size_out * self.kernel_macs

    @property
    def params(self) -> int:
        """Weights plus one bias per output channel."""
        return self.kernel_macs + self.c_out


def _block_specs(k: int, trunk: int, inner: int, size: int, separable: bool) -> Iterator[ConvSpec]:
    """The convs of residual block `k`: trunk -> inner -> trunk, each a dense 3x3 or a depthwise 3x3 + 1x1."""
    for conv, c_in, c_out in (("conv1", trunk, inner), ("conv2", inner, trunk)):
        name = f"blocks.{k}.{conv}"
        if separable:
            yield ConvSpec(f"{name}.dw", c_in, c_in, 3, size, size, groups=c_in)
            yield ConvSpec(f"{name}.pw", c_in, c_out, 1, size, size)
        else:
            yield ConvSpec(name, c_in, c_out, 3, size, size)


def conv_specs(arch: I2IArch, widths: Sequence[int], size: int | None = None) -> list[ConvSpec]:
    """Every conv of the network with layer widths `widths` (see `I2IArch.widths`) on a `size` px input
    (default: ``arch.image_size``), in the order the forward runs them."""
    size = arch.image_size if size is None else check_image_size(size, "size")
    w = tuple(widths)
    trunk, half, quarter = w[2], size // 2, size // 4
    specs = [
        ConvSpec("stem", arch.in_channels, w[0], 7, size, size),
        ConvSpec("down.0", w[0], w[1], 3, size, half),
        ConvSpec("down.1", w[1], trunk, 3, half, quarter),
    ]
    for k, inner in enumerate(w[3:-2]):
        specs += _block_specs(k, trunk, inner, quarter, arch.separable)
    specs += [
        ConvSpec("up.0", trunk, w[-2], 3, quarter, half, transposed=True),
        ConvSpec("up.1", w[-2], w[-1], 3, half, size, transposed=True),
        ConvSpec("head", w[-1], arch.out_channels, 7, size, size),
    ]
    return specs


def true_macs(arch: I2IArch, widths: Sequence[int], size: int | None = None) -> int:
    return sum(s.true_macs for s in conv_specs(arch, widths, size))


def paper_macs(arch: I2IArch, widths: Sequence[int], size: int | None = None) -> int:
    return sum(s.paper_macs for s in conv_specs(arch, widths, size))


def param_count(arch: I2IArch, widths: Sequence[int]) -> int:
    return sum(s.params for s in conv_specs(arch, widths))

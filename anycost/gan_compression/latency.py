"""A per-conv latency table for the image-to-image supernet: measure every conv once, predict any sub-network.

The idea of `search.latency` (whose `LatencyTable` this subclasses: same prediction, breakdown and JSON file)
on the convs of `models.i2i.conv_specs`: a conv's time depends only on its place in the network (the module
name with the block index dropped: "stem", "down.0", "block.conv1.pw", "up.1", ...), its input size and its
input and output widths, so the key is ``{place}/{size_in}/{c_in}/{c_out}`` and a sub-network's predicted
latency is the sum over its convs. Each conv is timed with the supernet's own module on its leading channels,
followed by the instance norm that follows every conv but the head (batch 1, this machine's torch threads);
ReLUs, the residual adds and the tanh are left out (elementwise, a few percent at these sizes).

A conv timed alone pays its Python call, which the generator's inference forward (one native call,
`anycost.ops.i2i_forward`) does not: at 32 px that was ~10 us a conv, more than many of the convs themselves. The
table's `call_overhead_ms` is that cost per conv, found by timing whole forwards of the full network and of the
smallest one against the sums of their entries, and `predict` subtracts it once per conv. That puts predictions on
the scale of the forward (the bundled 32 px student: 0.36-0.51 ms predicted for 0.24-0.45 ms measured over six
sub-networks, where the plain sums said 1.17-1.33 ms), but at that size the entries barely tell widths apart (a
conv's compute is a few us of its ~25 us call, and a sliced weight costs the call more than a full one), so they
order close sub-networks poorly: a MACs budget is the better one there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from anycost.models.i2i import I2IArch, I2IConfig, conv_specs
from anycost.models.i2i.layers import SlicedDepthwiseConv2d
from anycost.search.latency import LatencyTable


def _key(spec) -> str:
    place = re.sub(r"^blocks\.\d+\.", "block.", spec.name)
    return f"{place}/{spec.size_in}/{spec.c_in}/{spec.c_out}"


def conv_keys(config: I2IConfig) -> list[str]:
    """Table keys of the convs `config` runs, in order."""
    return [_key(s) for s in conv_specs(config.arch, config.widths)]


class I2ILatencyTable(LatencyTable):
    """Measured ms per conv key (see the module docstring) of one `I2IArch` supernet on one machine."""

    arch_type = I2IArch
    config_type = I2IConfig
    layer_keys = staticmethod(conv_keys)


def _width_pairs(arch: I2IArch):
    """The sub-networks whose convs give every key the space can need: each conv's widths depend on at most
    two entries of `I2IArch.widths` (stem; down1; the trunk; a block's inner width; up1; up2), so every choice of
    every such pair, the other layers at full width, covers them all."""
    n, choices = len(arch.widths), arch.width_choices()
    pairs = [(0, 1), (1, 2), *((2, k) for k in range(3, n - 2)), (2, n - 2), (n - 2, n - 1)]
    for i, j in pairs:
        for a in choices[i]:
            for b in choices[j]:
                widths = list(arch.widths)
                widths[i], widths[j] = a, b
                yield tuple(widths)


def table_specs(arch: I2IArch) -> dict:
    """Every conv a sub-network of supernet `arch` can run, by table key (the `conv_specs` entry of its first
    occurrence): the keys a complete table of `arch` has."""
    specs = {}
    for widths in _width_pairs(arch):
        for spec in conv_specs(arch, widths):
            specs.setdefault(_key(spec), spec)
    return specs


#: A timed sample of a conv is as many back-to-back calls as take about this long: single calls of the 10-30 us convs
#: of a 32 px student varied by more than the differences between their widths.
SAMPLE_S = 2e-4


def _conv_ms(G, spec, repeats: int, warmup: int, gen: torch.Generator) -> float:
    """Median ms of `spec`'s conv of `G` (on its leading channels) and the instance norm after it, batch 1."""
    from anycost.benchmark import time_call

    module = G.get_submodule(spec.name)
    x = torch.randn(1, spec.c_in, spec.size_in, spec.size_in, generator=gen)

    def call():  # each conv with its norm fused, as the generator runs it (the block's ReLU is left out, as elsewhere)
        if isinstance(module, SlicedDepthwiseConv2d):
            return module(x, normalize=True)
        return module(x, spec.c_out, normalize=spec.name != "head")

    with torch.inference_mode():
        once = time_call(call, 1, warmup).median_s
        calls = max(1, min(50, round(SAMPLE_S / max(once, 1e-9))))
        return time_call(lambda: [call() for _ in range(calls)], repeats, 0).median_s * 1000 / calls


def measure_i2i_latency(G, repeats: int = 5, warmup: int = 1, seed: int = 0) -> I2ILatencyTable:
    """Time every conv of supernet `G` at every width pair its sub-networks can give it (median of `repeats`
    calls after `warmup`), batch 1, at ``G.arch.image_size``."""
    from anycost.benchmark import machine_info

    gen = torch.Generator().manual_seed(seed)
    entries = {key: _conv_ms(G, spec, repeats, warmup, gen) for key, spec in table_specs(G.arch).items()}
    overhead = _call_overhead_ms(G, entries, repeats, warmup, gen)
    return I2ILatencyTable(G.arch, entries, "torch", torch.get_num_threads(), 0.0, machine_info(), overhead)


def _call_overhead_ms(G, entries: dict[str, float], repeats: int, warmup: int, gen: torch.Generator) -> float:
    """Per conv, how much the entries of a sub-network sum to more than its measured forward (see the module
    docstring): the mean over the full network and the smallest one, at least 0."""
    from anycost.benchmark import time_call

    arch = G.arch
    x = torch.rand(1, arch.in_channels, arch.image_size, arch.image_size, generator=gen) * 2 - 1
    excess = []
    with torch.inference_mode():
        for config in (I2IConfig.full(arch), I2IConfig(arch, tuple(c[0] for c in arch.width_choices()))):
            keys = conv_keys(config)
            forward_ms = time_call(lambda config=config: G(x, config=config), repeats, warmup).median_s * 1000
            excess.append((sum(entries[k] for k in keys) - forward_ms) / len(keys))
    return max(0.0, sum(excess) / len(excess))


@dataclass(frozen=True)
class LayerTime:
    """One conv of a generator's full network on a `size` px input: its spec, true MACs and median ms."""

    name: str
    kind: str  # "conv k x k", "depthwise 3x3", "pointwise", "transposed 3x3"
    c_in: int
    c_out: int
    size_out: int
    macs: int
    ms: float

    @property
    def gflops(self) -> float:
        return 2 * self.macs / self.ms / 1e6


def _kind(spec) -> str:
    if spec.transposed:
        return "transposed 3x3"
    if spec.groups > 1:
        return f"depthwise {spec.kernel}x{spec.kernel}"
    return "pointwise" if spec.kernel == 1 else f"conv {spec.kernel}x{spec.kernel}"


def layer_times(G, size: int | None = None, repeats: int = 7, warmup: int = 2, seed: int = 0) -> list[LayerTime]:
    """Every conv (with its instance norm) of `G`'s full network on a `size` px input (default: its image size),
    timed alone: where a forward's time goes, and how near each conv runs to the machine's peak."""
    gen = torch.Generator().manual_seed(seed)
    return [LayerTime(s.name, _kind(s), s.c_in, s.c_out, s.size_out, s.true_macs, _conv_ms(G, s, repeats, warmup, gen))
            for s in conv_specs(G.arch, G.arch.widths, size)]


def layer_summary(layers: list[LayerTime]) -> dict[str, dict[str, float]]:
    """Per conv kind: count, MACs, ms and GFLOP/s summed over `layers`."""
    kinds: dict[str, dict[str, float]] = {}
    for t in layers:
        k = kinds.setdefault(t.kind, {"count": 0, "macs": 0, "ms": 0.0})
        k["count"] += 1
        k["macs"] += t.macs
        k["ms"] += t.ms
    for k in kinds.values():
        k["gflops"] = 2 * k["macs"] / k["ms"] / 1e6
    return kinds

"""`CompressedGenerator`: a StyleGAN2 `Generator` whose weights went through compression steps.

It runs exactly like a `Generator` (dense weights, every `SubnetConfig` of its arch works); what it adds is the
record of what was done (`steps`) and how each compressed weight is to be stored (`encodings`, used by
`anycost.compression.files`): ``{"kind": "sparse"}`` (bitmask + kept values), ``{"kind": "kmeans", "bits": b}``
(codebook + packed indices), ``{"kind": "int8", ...}`` (`compression.int8`), or a k-means one with an ``"int8"``
entry (k-means weights run by the int8 kernels). Weights without an entry are stored dense.
"""

from __future__ import annotations

import torch

from anycost.models.stylegan2.arch import GeneratorArch
from anycost.models.stylegan2.generator import Generator
from anycost.models.stylegan2.layers import StyledConv


class CompressedGenerator(Generator):
    """A `Generator` plus `steps` (JSON-ready dicts, in order) and `encodings` (state key -> storage spec)."""

    def __init__(self, *args, steps=(), encodings: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = [dict(s) for s in steps]
        self.encodings = {k: dict(v) for k, v in (encodings or {}).items()}

    def extra_repr(self) -> str:
        return f"{self.arch!r}, steps={self.steps}"

    def _native_convs(self, convs) -> bool:
        """Plain StyledConvs and int8 ones (`compression.int8.Int8StyledConv`, which has `native_tensors`; not
        while calibrating, which watches their inputs): the native call runs the latter's int8 convs from the
        tensors `_native_conv_tensors` gives."""
        return all(type(m) is StyledConv or (_runs_in_native_call(m) and not m.observing) for m in convs)

    def _native_conv_tensors(self, widths, impl: str) -> tuple[tuple, list]:
        """The int8 parts (`Int8StyledConv.native_tensors`) of the convs of this config that run int8, named
        ``<conv>.int8.<part>`` as `ops.synthesis` takes them."""
        names, tensors = [], []
        for j, m in enumerate([self.conv1, *self.convs._modules.values()][: len(widths) - 1]):
            if _runs_in_native_call(m):
                prefix = "conv1" if j == 0 else f"convs.{j - 1}"
                for part, t in m.native_tensors(widths[j + 1], widths[j], 2 ** (j // 2 + 2), impl):
                    names.append(f"{prefix}.int8.{part}")
                    tensors.append(t)
        return tuple(names), tensors


def _runs_in_native_call(conv) -> bool:
    """Whether a StyledConv subclass gives the native call its own parts (`native_tensors`: the int8 layers; by
    attribute, as `compression.int8` imports this module)."""
    return callable(getattr(type(conv), "native_tensors", None))


def build(arch: GeneratorArch, state: dict[str, torch.Tensor], steps, encodings: dict) -> CompressedGenerator:
    """A CompressedGenerator of `arch` holding `state` (no random init, no w_avg sampling), in eval mode."""
    with torch.device("meta"):
        G = CompressedGenerator(arch=arch, steps=steps, encodings=encodings)
    G = G.to_empty(device=next(iter(state.values())).device)
    G.load_state_dict(state)
    return G.eval()


def compressible_keys(G: Generator) -> list[str]:
    """State keys of the weights the methods compress: the 3x3 modulated convs (99.8% of the conv weights). The
    1x1 ToRGB weights, which every scale's image is read off, the mapping and the modulations stay dense."""
    return [f"{name}.conv.weight" for name, module in G.named_modules() if isinstance(module, StyledConv)]


def run_spec(encoding: dict) -> dict | None:
    """How a weight with this encoding runs int8 ({"act_scale", "min_channels", "min_size"}): an int8 weight's own
    spec, a k-means weight's "int8" entry (see the module docstring), None for a weight that does not run int8."""
    return encoding if encoding.get("kind") == "int8" else encoding.get("int8")


def start_from(G, allow: tuple[str, ...] = ()) -> tuple[list, dict]:
    """(steps, encodings) a new compression of `G` builds on; TypeError for a non-generator, ValueError when `G`'s
    weights are already encoded other than as the kinds in `allow` (int8 allows k-means: its integer weights are
    derived from the clustered ones, which the file keeps) or already run int8."""
    if not isinstance(G, Generator):
        raise TypeError(f"expected an anycost StyleGAN2 Generator, got {type(G).__name__}")
    if not isinstance(G, CompressedGenerator):
        return [], {}
    if any(spec["kind"] not in allow or run_spec(spec) is not None for spec in G.encodings.values()):
        methods = ", ".join(s["method"] for s in G.steps)
        raise ValueError(f"this generator is already compressed ({methods}): compress the uncompressed one "
                         "(only channel pruning can be followed by another method, and k-means by int8)")
    return list(G.steps), {key: dict(spec) for key, spec in G.encodings.items()}

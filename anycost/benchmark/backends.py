"""Which backend every styled conv of one forward ran on: "kernel" (our native kernel), "ref" (the reference: one
oneDNN fp32 conv with the shared weight) or "bf16" (the oneDNN bf16 path), as `anycost.ops` chose it per call
(impl="auto": this machine's tuning table for the shapes it holds, else the fixed rule; see `anycost.ops`)."""

from __future__ import annotations

import torch

from anycost import ops
from anycost.models.stylegan2 import SubnetConfig
from anycost.models.stylegan2.layers import StyledConv


def layer_backends(G, w: torch.Tensor, config: SubnetConfig, impl: str, precision: str = "fp32") -> dict[str, str]:
    """The backend each StyledConv of ``G(w, config=config, noise="const", impl=impl, precision=precision)`` took,
    by layer name in call order, from one untimed forward.

    The choice is read where it is made: for that forward, `anycost.ops._modconv_backend` (which every
    `ops.modulated_conv2d` call asks) is wrapped to note its answer under the name of the StyledConv running, which a
    forward pre-hook sets; a forward that is one native call (`anycost.ops.synthesis`, which `Generator.forward`
    takes at fp32 inference) runs the kernel in every styled conv of the config. Not thread-safe (it swaps module
    attributes): call it with no other forward running.
    """
    running: list[str] = []  # the StyledConv being called, by name (the last one)
    taken: dict[str, str] = {}
    choose, synthesis = ops._modconv_backend, ops.synthesis

    def noting(*args):
        backend = choose(*args)
        taken[running[-1]] = backend
        return backend

    def whole(*args):
        convs = len(config.widths) - 1  # conv1, convs.0, ...
        taken.update({"conv1" if j == 0 else f"convs.{j - 1}": "kernel" for j in range(convs)})
        return synthesis(*args)

    handles = [m.register_forward_pre_hook(lambda module, args, name=name: running.append(name))
               for name, m in G.named_modules() if isinstance(m, StyledConv)]
    ops._modconv_backend, ops.synthesis = noting, whole
    try:
        with torch.inference_mode():
            G(w, config=config, noise="const", impl=impl, precision=precision)
    finally:
        ops._modconv_backend, ops.synthesis = choose, synthesis
        for h in handles:
            h.remove()
    return taken


def backend_codes(backends: dict[str, str]) -> str:
    """The backends of one forward as one letter per styled conv, in call order: k kernel, r ref, b bf16."""
    return "".join(backend[0] for backend in backends.values())

"""Pruning: fine-grained magnitude pruning (`prune`) and structured channel pruning (`prune_channels`).

Both return a new generator and leave the input untouched.
"""

from __future__ import annotations

import copy
import math

import torch

from anycost.compression.generator import CompressedGenerator, build, compressible_keys, start_from
from anycost.models.stylegan2.arch import GeneratorArch
from anycost.models.stylegan2.channel_sort import sort_channels
from anycost.models.stylegan2.config import SubnetConfig
from anycost.models.stylegan2.layers import EqualLinear, ModulatedConv

SCOPES = ("global", "layer")
WEIGHTS = ("convs", "all")  # what `prune` zeroes (`prunable_weights`)


def check_sparsity(sparsity) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    return float(sparsity)


def _smallest(magnitudes: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` smallest entries of the 1-D `magnitudes` (ties by position: an exact count)."""
    return torch.argsort(magnitudes, stable=True)[:count]


def prunable_weights(G, weights: str = "convs") -> dict[str, float]:
    """The state keys `prune` zeroes, each with the factor that puts its stored values on the scale they are ranked
    on: "convs" the 3x3 modulated convs (`compressible_keys`); "all" every weight matrix: the mapping network's,
    every modulation's and the 3x3 and ToRGB convs'. With the equalised learning rate every layer stores
    unit-variance values divided by its lr_mul (the mapping's is `arch.lr_mlp`, 0.01 in config-f; every other 1),
    so |stored| x lr_mul compares across all of them."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if weights == "convs":
        return dict.fromkeys(compressible_keys(G), 1.0)
    return {f"{name}.weight": module.lr_mul if isinstance(module, EqualLinear) else 1.0
            for name, module in G.named_modules() if isinstance(module, (EqualLinear, ModulatedConv))}


@torch.no_grad()
def prune(G, sparsity: float = 0.5, scope: str = "global", weights: str = "convs") -> CompressedGenerator:
    """Zero the `sparsity` fraction of smallest-magnitude weights of the 3x3 modulated convs (`weights="convs"`)
    or of every weight matrix of the generator (`"all"`, `prunable_weights`).

    `scope` "layer" zeroes round(sparsity * n) weights of every layer of n weights; "global" ranks them all together
    (on the scale of `prunable_weights`: equalised learning rate gives every layer the same unit-variance
    parametrisation, so their magnitudes compare) and zeroes round(sparsity * total). The result stores its pruned
    weights as a bitmask + the kept values (`compression.files`); it runs dense (see bench/RESULTS.md). "all" is what
    makes the whole file shrink with the sparsity (the 3x3 convs are 58% of the bundled model's file, 71% of
    config-f's); it also prunes the mapping network, so the model's own mapping of z moves from the original's.
    """
    sparsity = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    steps, encodings = start_from(G)
    factors = prunable_weights(G, weights)
    state = {k: v.detach().clone() for k, v in G.state_dict().items()}
    flats = [state[k].view(-1) for k in factors]
    if scope == "layer":
        for flat in flats:
            flat[_smallest(flat.abs(), round(sparsity * flat.numel()))] = 0
    else:
        everything = torch.cat([flat.abs() * factor for flat, factor in zip(flats, factors.values())])
        zeroed = torch.zeros(everything.numel(), dtype=torch.bool)
        zeroed[_smallest(everything, round(sparsity * everything.numel()))] = True
        for flat, part in zip(flats, zeroed.split([f.numel() for f in flats])):
            flat[part] = 0
    encodings.update({k: {"kind": "sparse"} for k in factors})
    step = {"method": "prune", "sparsity": sparsity, "scope": scope, "weights": weights}
    return build(G.arch, state, steps + [step], encodings)


def check_keep(keep) -> float:
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1], got {keep!r}")
    return float(keep)


def pruned_arch(arch: GeneratorArch, keep: float) -> GeneratorArch:
    """The architecture whose full widths are those of `arch`'s uniform sub-generator at ratio `keep`.

    The official width formula ``min(cap, int(BASE * ratio * multiplier))`` makes that the same cap with the
    multiplier scaled by `keep`; ValueError when float rounding makes a layer differ, or a layer keeps nothing.
    """
    try:
        widths = SubnetConfig.uniform(arch, keep).widths
        smaller = GeneratorArch(arch.resolution, arch.channel_multiplier * keep, arch.channel_max, arch.style_dim,
                                arch.n_mlp, arch.lr_mlp)
    except ValueError as err:
        raise ValueError(f"keep={keep} leaves a layer with no channel ({err})") from None
    if smaller.full_widths != widths:
        raise ValueError(f"keep={keep}: widths {list(widths)} map to no architecture (rounding gives "
                         f"{list(smaller.full_widths)}); pick a keep whose widths are exact, e.g. 0.75 or 0.5")
    return smaller


def _equal_scale(conv_weight: torch.Tensor, full_in: int) -> torch.Tensor:
    """The weight rescaled so that the smaller layer's equalised-lr scale 1/sqrt(c_in k^2) gives the same
    effective weight as the full layer's (ToRGB has no demodulation, so the scale reaches the output)."""
    return conv_weight * math.sqrt(conv_weight.shape[2] / full_in)


@torch.no_grad()
def prune_channels(G, keep: float = 0.75, sort: bool = False) -> CompressedGenerator:
    """A smaller generator: the leading channels of every layer, as many as `G`'s uniform ratio `keep` has.

    Its weights are a prefix of `G`'s, so it computes `G`'s sub-generator of those widths, and every smaller
    sub-generator of `G` is one of its own (`config_for`). An Anycost-trained model's channels already are in
    importance order (training sorts them, then trains the prefixes), so by default the prefix is taken as it
    is; `sort=True` first applies `anycost.sort_channels` (to a copy), for a model never trained elastic.
    """
    keep = check_keep(keep)
    steps, encodings = start_from(G)
    arch = pruned_arch(G.arch, keep)
    source = sort_channels(copy.deepcopy(G)) if sort else G
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in CompressedGenerator(arch=arch).state_dict().items()}
    full = source.state_dict()
    state = {k: full[k][tuple(slice(0, n) for n in shape)].clone() for k, shape in shapes.items()}
    for name, module in source.named_modules():
        if isinstance(module, ModulatedConv):  # keep its effective weight
            key = f"{name}.weight"
            state[key] = _equal_scale(state[key], module.weight.shape[2])
    step = {"method": "channels", "keep": keep, "sort": sort, "widths": list(arch.full_widths)}
    return build(arch, state, steps + [step], encodings)


def config_for(G, config: SubnetConfig) -> SubnetConfig:
    """`config` (of a larger generator) as a config of `G`: the same resolution and widths, each capped at `G`'s
    width of that layer (no cap is needed when `config` is a sub-generator of `G`'s widths)."""
    widths = [min(w, full) for w, full in zip(config.widths, G.arch.full_widths)]
    return SubnetConfig.flexible(G.arch, widths, config.resolution)

"""A short distillation fine-tune of a compressed generator from the uncompressed one it came from.

Objective: the MSE between the compressed generator's output and the original's on the same W latents (the
original's mapping of fresh z every step) and the same noise, at sub-generator configs drawn as Anycost training
draws them (`training.sampling`): a resolution (the full one with probability 1/2, else a lower one), then the
sandwich at it: the full config, the smallest uniform one and a random one (flexible with probability 1/2).
Adam on every synthesis parameter; the mapping network stays frozen, so it is still the original's and a w
means the same to both models. A model whose mapping was pruned too (`prune(..., weights="all")`) maps the same z
with its own mapping, which is fine-tuned with the rest (the original's w is then not exactly its own).

The compressed weights keep their structure: after every step they are projected back onto it.
- Magnitude pruning: the pruned weights are set back to zero, so the mask is exactly the one pruning chose and
  the file stays as small.
- k-means: every weight is set to the mean of its cluster (the assignments of the start are kept), so a layer
  still holds at most 2**bits values (Deep Compression's shared-centroid fine-tune, with the Adam update
  averaged over each cluster).
- Channel pruning: a smaller generator, nothing to project. The configs are drawn in its own space; a layer at
  its full width imitates the original's full width (the channels it cut), a narrower one the original's same
  width (the prefix it kept), so the trained sub-generators are pulled towards what they were.
int8 models are refused: their integer layers are inference-only.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from tqdm.auto import tqdm

from anycost.compression.generator import CompressedGenerator, build, run_spec
from anycost.models.stylegan2 import UNIFORM_RATIOS, SubnetConfig
from anycost.training import sampling

FULL_RESOLUTION_PROB = 0.5  # steps at the full resolution; the others at a lower one (the elastic previews)
FLEXIBLE_PROB = 0.5  # the sandwich's random member has per-layer widths with this probability
BATCH = 4  # latents per step
LR = 1e-3  # Adam; on the bundled model the best of 1e-4, 1e-3, 3e-3 after 200 steps (50% pruning, 2-bit k-means)


def check_steps(steps) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"fine-tune steps must be an integer >= 0, got {steps!r}")
    return steps


def check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"learning rate must be a positive number, got {lr!r}")
    return float(lr)


def _check_finetunable(Gc) -> None:
    """TypeError unless `Gc` is a CompressedGenerator; ValueError for an int8 one (inference only)."""
    if not isinstance(Gc, CompressedGenerator):
        raise TypeError(f"expected a CompressedGenerator (from prune, prune_channels or kmeans_quantize), got "
                        f"{type(Gc).__name__}")
    if any(run_spec(spec) is not None for spec in Gc.encodings.values()):
        raise ValueError("an int8 generator cannot be fine-tuned (its integer layers are inference-only): "
                         "fine-tune before quantising, or use prune / channels / kmeans")


def _cluster_means(weight: torch.Tensor, clusters: torch.Tensor, sizes: torch.Tensor) -> None:
    """Set every weight to the mean of its cluster (`clusters`: the flat weight's cluster indices)."""
    flat = weight.view(-1)
    flat.copy_((torch.zeros_like(sizes).index_add_(0, clusters, flat) / sizes)[clusters])


def _projections(G: CompressedGenerator) -> list:
    """One function per encoded weight of `G` that puts the weight back onto its structure (in place)."""
    out = []
    for key, spec in G.encodings.items():
        weight = G.get_parameter(key)
        if spec["kind"] == "sparse":
            out.append(partial(torch.Tensor.mul_, weight, weight.detach() != 0))
        elif spec["kind"] == "kmeans":
            _, clusters = torch.unique(weight.detach().reshape(-1), return_inverse=True)
            out.append(partial(_cluster_means, weight, clusters, torch.bincount(clusters).to(weight.dtype)))
    return out


def teacher_config(G, Gc, config: SubnetConfig) -> SubnetConfig:
    """The config of the original `G` that `Gc`'s `config` imitates: a layer at `Gc`'s full width stands for
    `G`'s full width, a narrower one for the same width (the identity when `Gc` has `G`'s architecture)."""
    widths = [g if w == c else w for w, c, g in zip(config.widths, Gc.arch.full_widths, G.arch.full_widths)]
    return SubnetConfig.flexible(G.arch, widths, config.resolution)


def _loss(G, Gs, rng: torch.Generator, own_mapping: bool) -> torch.Tensor:
    """One step's distillation loss: mean over the sandwich of the MSE between `Gs` and `G` (see the docstring);
    `Gs` maps z with its own mapping when `own_mapping`, else takes `G`'s w."""
    res = sampling.sample_resolution(Gs.arch, rng, FULL_RESOLUTION_PROB)
    configs = sampling.sandwich(Gs.arch, UNIFORM_RATIOS, res, FLEXIBLE_PROB, rng)
    z = torch.randn(BATCH, G.arch.style_dim, generator=rng)
    with torch.no_grad():
        w = G.mapping(z)
        noise = G.make_noise(BATCH, res, rng)
        targets = [G(w, config=teacher_config(G, Gs, c), noise=noise) for c in configs]
    ws = Gs.mapping(z) if own_mapping else w
    return sum((Gs(ws, config=c, noise=noise) - t).square().mean() for c, t in zip(configs, targets)) / len(configs)


def finetune(Gc, G, steps: int, lr: float = LR, seed: int = 1, progress: bool = False) -> CompressedGenerator:
    """A copy of the compressed `Gc` fine-tuned for `steps` Adam steps (learning rate `lr`) to imitate the
    uncompressed `G` (see the module docstring); its latents, noise and configs come from a generator seeded by
    `seed`. `Gc` and `G` are left untouched; the copy's `steps` record the fine-tune."""
    steps, lr = check_steps(steps), check_lr(lr)
    _check_finetunable(Gc)
    record = {"method": "finetune", "steps": steps, "lr": lr, "batch": BATCH, "seed": seed}
    Gs = build(Gc.arch, {k: v.detach().clone() for k, v in Gc.state_dict().items()}, Gc.steps + [record],
               Gc.encodings)
    # Unless it was pruned the mapping never runs in Gs (w comes from G's), so it gets no gradient; leaving it out
    # of Adam keeps it exactly the original's.
    own_mapping = any(key.startswith("style.") for key in Gs.encodings)
    opt = torch.optim.Adam([p for name, p in Gs.named_parameters() if own_mapping or not name.startswith("style.")],
                           lr=lr)
    project = _projections(Gs)
    rng = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(steps), desc="fine-tuning", unit="step", disable=not progress):
        loss = _loss(G, Gs, rng, own_mapping)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for fn in project:
                fn()
    return Gs.eval()

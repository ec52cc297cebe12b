"""SlimGAN's consistency metric: mean Inception consistency (mIC) between generators of different widths.

Source: Hou et al., "Slimmable Generative Adversarial Networks", AAAI 2021 (arXiv 2012.05660), which proposes mIC
in its experiments' evaluation-metrics paragraph to measure how consistent the outputs of the different widths
of one slimmable generator are. The stored copies of the paper we could search give its abstract and
introduction only, so the formula below was checked against the authors' released code instead
(github.com/liang-hou/slimgan, ``torch_mimicry/metrics/compute_mic.py``, function ``mic_score``):

    mIC = 1 / (K (K - 1)) * sum over ordered pairs i != j of  mean over samples z of  ||phi(G_i(z)) - phi(G_j(z))||^2

for the K widths G_1..G_K of the generator (SlimGAN: 0.25x, 0.5x, 0.75x, 1.0x, the full width included), the same
latent z (and class label) for every width, and phi = the 2048-d pool_3 features of the TensorFlow Inception graph
that FID uses. It is a mean *squared Euclidean* distance (not a cosine): lower is more consistent, 0 means every
width gives the same features. The pair matrix is symmetric, so this equals the mean over unordered pairs.

Here: phi is `anycost.metrics.inception.InceptionFeatures` (the StyleGAN conversion of that same Inception graph;
any extractor ``images -> [N, D]`` can be passed), the widths are `SubnetConfig`s (default: SlimGAN's uniform width
list at the model's resolution), and the configs also share the per-layer noise. Two differences from the
authors' code, both ours: images are quantised to 8 bits with the fixed [-1, 1] -> [0, 255] mapping used for FID
(the authors rescale each batch by its own min and max first), and configs of *different resolutions* are
compared at the lower of the two, the higher one being area-downsampled to it (SlimGAN only changes width; this
follows `subnet_consistency`). The result also keeps the whole K x K pair matrix, so one row gives each config's
distance to the full model when the full config is in the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from anycost.metrics.consistency import check_configs, check_positive, downsample_to, same_latent_outputs
from anycost.models.stylegan2 import UNIFORM_RATIOS, SubnetConfig


@dataclass(frozen=True)
class MICResult:
    """mIC over `configs` (`value`, lower is better, 0 = identical features) and the K x K matrix of mean squared
    feature distances per pair (`pairwise`, 0 on the diagonal), over `n` samples, from features `extractor`."""

    value: float
    pairwise: tuple[tuple[float, ...], ...]
    configs: tuple[SubnetConfig, ...]
    n: int
    extractor: str

    def to_dict(self) -> dict:
        return {"value": self.value, "pairwise": [list(row) for row in self.pairwise],
                "configs": [c.to_dict() for c in self.configs], "n": self.n, "extractor": self.extractor}


def slimgan_configs(arch) -> list[SubnetConfig]:
    """SlimGAN's width list (0.25x, 0.5x, 0.75x, 1.0x) as uniform configs at the model's resolution."""
    return [SubnetConfig.uniform(arch, ratio) for ratio in UNIFORM_RATIOS]


def mic_from_features(features: dict[tuple[int, int], torch.Tensor], resolutions: Sequence[int]) -> torch.Tensor:
    """The K x K matrix of mean squared distances; `features[(k, r)]` are config k's features [n, D] at resolution
    r, and pair (i, j) is compared at min(resolutions[i], resolutions[j])."""
    k = len(resolutions)
    out = torch.zeros(k, k, dtype=torch.float64)
    for i in range(k):
        for j in range(i + 1, k):
            r = min(resolutions[i], resolutions[j])
            d = (features[(i, r)].double() - features[(j, r)].double()).square().sum(1).mean()
            out[i, j] = out[j, i] = d
    return out


@torch.no_grad()
def mean_inception_consistency(G, configs: Sequence[SubnetConfig] | None = None, n: int = 64, seed: int = 0,
                               batch: int = 16, *, extractor=None, truncation: float = 1.0, impl: str = "auto",
                               progress: bool = False) -> MICResult:
    """SlimGAN's mIC of generator `G` over `configs` (at least two; default `slimgan_configs`) on `n` samples.

    Every config renders the same z and noise (`same_latent_outputs`, seeded by `seed`). `extractor` maps [-1, 1]
    images [N, 3, H, W] to features [N, D] (default: `InceptionFeatures(batch_size=batch)`, 2048-d); a config of a
    higher resolution than its partner is area-downsampled to the partner's resolution before extraction.
    """
    from anycost.metrics.fid import _default_extractor, _extractor_id

    configs = check_configs(G, slimgan_configs(G.arch) if configs is None else configs)
    if len(configs) < 2:
        raise ValueError("mIC compares configs pairwise: give at least two")
    check_positive(n=n, batch=batch)
    extractor = _default_extractor(extractor, batch, progress=False)
    resolutions = [c.resolution for c in configs]
    # the resolutions each config is compared at: its own and every lower one among the others
    needed = [sorted({min(r, other) for other in resolutions}) for r in resolutions]
    chunks: dict[tuple[int, int], list[torch.Tensor]] = {(k, r): [] for k, rs in enumerate(needed) for r in rs}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="mIC", unit="sample")
    try:
        for outputs in same_latent_outputs(G, configs, n, seed, batch, truncation=truncation, impl=impl):
            for k, images in enumerate(outputs):
                for r in needed[k]:
                    feats = torch.as_tensor(extractor(downsample_to(images, r))).float().cpu()
                    if feats.ndim != 2 or len(feats) != len(images):
                        raise ValueError(f"the extractor must return features [N, D], got {tuple(feats.shape)}")
                    chunks[(k, r)].append(feats)
            if bar is not None:
                bar.update(len(images))
    finally:
        if bar is not None:
            bar.close()
    features = {key: torch.cat(parts) for key, parts in chunks.items()}
    pairwise = mic_from_features(features, resolutions)
    k = len(configs)
    value = pairwise.sum().item() / (k * (k - 1))
    return MICResult(value=value, pairwise=tuple(tuple(row) for row in pairwise.tolist()), configs=tuple(configs),
                     n=n, extractor=_extractor_id(extractor))

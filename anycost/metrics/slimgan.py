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

A SlimGAN generator (`anycost.models.slimgan.SlimGenerator`) is measured over its own widths (default: all of
them), in eval mode (running statistics), with the same z and, for a class-conditional model, the same class for
every width (drawn uniformly per sample, or one class `y` for all); a grey model's images are copied to RGB, as the
Inception network needs. `evaluate_widths` adds FID and KID per width against reference statistics (the
paper's table: width, FID, KID, mIC) and, for a class-conditional model, `class_accuracy`: how often a classifier
of the data (`anycost.metrics.fashion_classifier`) puts a sample in the class it was rendered for. The paper also
reports the Inception Score; our offline Inception network has no classifier logits, so IS is not defined with it,
and class accuracy stands in for it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from anycost.checks import check_positive
from anycost.images import to_rgb
from anycost.metrics.attributes import AttributeClassifier
from anycost.metrics.consistency import check_configs, downsample_to, same_latent_outputs
from anycost.metrics.fashion_classifier import load_fashion_classifier
from anycost.metrics.fid import (
    FeatureStats,
    _default_extractor,
    _extractor_id,
    check_reference,
    score_features,
)
from anycost.models.slimgan import SlimConfig, SlimGenerator
from anycost.models.stylegan2 import UNIFORM_RATIOS, SubnetConfig


@dataclass(frozen=True)
class MICResult:
    """mIC over `configs` (`value`, lower is better, 0 = identical features) and the K x K matrix of mean squared
    feature distances per pair (`pairwise`, 0 on the diagonal), over `n` samples, from features `extractor`."""

    value: float
    pairwise: tuple[tuple[float, ...], ...]
    configs: tuple[SubnetConfig | SlimConfig, ...]
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


@contextlib.contextmanager
def eval_mode(module: torch.nn.Module):
    """Run the block with `module` in eval mode (a generator's BNs use their running statistics and keep them),
    then give it back its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def slim_widths(G: SlimGenerator, widths=None) -> list[SlimConfig]:
    """`widths` (numbers or SlimConfigs; default: every width of `G`) as G's checked configs."""
    configs = [G.subnet(w) for w in (G.widths if widths is None else widths)]
    if not configs:
        raise ValueError("give at least one width")
    return configs


def slim_latents(G: SlimGenerator, n: int, seed: int = 0, batch: int = 16,
                 y: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (z, classes) on G's device per batch of up to `batch` of the `n` samples; classes are None for an
    unconditional G, else uniform (or all `y`). Both come from a CPU torch.Generator seeded by `seed`, so the same
    (n, seed, batch) gives the same samples."""
    check_positive(n=n, batch=batch)
    if y is not None and not G.num_classes:
        raise ValueError("y is for a class-conditional generator: this one is unconditional")
    device = next(G.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(b, G.z_dim, generator=rng).to(device)
        classes = None
        if G.num_classes:
            classes = torch.randint(G.num_classes, (b,), generator=rng) if y is None else torch.full((b,), y)
            classes = classes.to(device)
        yield z, classes


def slim_outputs(G: SlimGenerator, configs: Sequence[SlimConfig], n: int, seed: int = 0, batch: int = 16,
                 y: int | None = None) -> Iterator[list[torch.Tensor]]:
    """Yield, per batch of `slim_latents`, the RGB images of every config (in order) for the same z and classes."""
    for z, classes in slim_latents(G, n, seed, batch, y):
        yield [to_rgb(G(z, classes, width=c)) for c in configs]


@torch.no_grad()
def mean_inception_consistency(G, configs: Sequence | None = None, n: int = 64, seed: int = 0, batch: int = 16, *,
                               extractor=None, truncation: float = 1.0, impl: str = "auto", progress: bool = False,
                               y: int | None = None) -> MICResult:
    """SlimGAN's mIC of generator `G` over `configs` (at least two) on `n` samples.

    A StyleGAN2 generator: `configs` are SubnetConfigs (default `slimgan_configs`); every config renders the same
    z and noise (`same_latent_outputs`, seeded by `seed`), and a config of a higher resolution than its partner is
    area-downsampled to the partner's. A SlimGAN generator: `configs` are widths or SlimConfigs (default: all
    its widths), rendered by `slim_outputs` (same z, and classes, or the class `y`, for every width) in eval mode.
    `extractor` maps [-1, 1] images [N, 3, H, W] to features [N, D] (default: `InceptionFeatures(batch_size=batch)`,
    2048-d). `truncation` and `impl` apply to StyleGAN2 generators only.
    """
    check_positive(n=n, batch=batch)
    if isinstance(G, SlimGenerator):
        configs = slim_widths(G, configs)
        resolutions = [G.arch.resolution] * len(configs)
        outputs, mode = slim_outputs(G, configs, n, seed, batch, y), eval_mode(G)
    else:
        if y is not None:
            raise ValueError("y is for class-conditional SlimGAN generators")
        configs = check_configs(G, slimgan_configs(G.arch) if configs is None else configs)
        resolutions = [c.resolution for c in configs]
        outputs = same_latent_outputs(G, configs, n, seed, batch, truncation=truncation, impl=impl)
        mode = contextlib.nullcontext()
    if len(configs) < 2:
        raise ValueError("mIC compares configs pairwise: give at least two")
    extractor = _default_extractor(extractor, batch, progress=False)
    with mode:
        features = _features_per_resolution(outputs, resolutions, extractor, n, progress)
    return _mic_result(features, resolutions, configs, n, extractor)


def _mic_result(features: dict[tuple[int, int], torch.Tensor], resolutions: Sequence[int], configs: Sequence, n: int,
                extractor) -> MICResult:
    """The mIC of `configs` from their features (`_features_per_resolution`) on `n` samples."""
    pairwise = mic_from_features(features, resolutions)
    k = len(configs)
    value = pairwise.sum().item() / (k * (k - 1))
    return MICResult(value=value, pairwise=tuple(tuple(row) for row in pairwise.tolist()), configs=tuple(configs),
                     n=n, extractor=_extractor_id(extractor))


def _features_per_resolution(outputs, resolutions: Sequence[int], extractor, n: int,
                             progress: bool) -> dict[tuple[int, int], torch.Tensor]:
    """features[(k, r)]: config k's features [n, D] at every resolution r it is compared at (its own and each
    lower one among the others), from `outputs` (per batch, every config's images)."""
    needed = [sorted({min(r, other) for other in resolutions}) for r in resolutions]
    chunks: dict[tuple[int, int], list[torch.Tensor]] = {(k, r): [] for k, rs in enumerate(needed) for r in rs}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="mIC", unit="sample")
    try:
        for batch_outputs in outputs:
            for k, images in enumerate(batch_outputs):
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
    return {key: torch.cat(parts) for key, parts in chunks.items()}


def classifier_for(G: SlimGenerator, classifier: AttributeClassifier | None = None) -> AttributeClassifier:
    """`classifier` (default: the bundled Fashion-MNIST one) checked against G: G is class-conditional, and the
    classifier has one label whose values are G's classes, on images of G's channels."""
    if not G.num_classes:
        raise ValueError("class accuracy needs a class-conditional generator: this one is unconditional")
    classifier = load_fashion_classifier() if classifier is None else classifier
    if not isinstance(classifier, AttributeClassifier):
        raise TypeError(f"classifier must be an AttributeClassifier, got {type(classifier).__name__}")
    values = list(classifier.label_values.values())
    if len(values) != 1 or len(values[0]) != G.num_classes:
        raise ValueError(f"the classifier must have one label of the generator's {G.num_classes} classes, got "
                         f"{classifier.label_values}")
    if classifier.channels != G.arch.img_channels:
        raise ValueError(f"the classifier takes images of {classifier.channels} channels, the generator makes "
                         f"{G.arch.img_channels}")
    return classifier


@torch.no_grad()
def class_accuracy(G: SlimGenerator, width: float | SlimConfig, n: int = 1000, seed: int = 0, *,
                   classifier: AttributeClassifier | None = None, batch: int = 16, y: int | None = None) -> float:
    """The fraction of `n` samples of a class-conditional G at `width` that `classifier` (default: the bundled
    Fashion-MNIST one) puts in the class they were rendered for; chance is 1 / G.num_classes.

    Our stand-in for the Inception Score, which the offline Inception network cannot compute (it has no logits).
    z and the classes (uniform, or all `y`) come from `slim_latents`, so the same (n, seed, batch, y) scores the
    samples that FID scores; G runs in eval mode.
    """
    classifier = classifier_for(G, classifier)
    config = G.subnet(width)
    check_positive(n=n, batch=batch)
    correct = 0
    with eval_mode(G):
        for z, classes in slim_latents(G, n, seed, batch, y):
            predicted = classifier.predict_labels(G(z, classes, width=config))[:, 0]
            correct += (predicted == classes.cpu()).sum().item()
    return correct / n


@torch.no_grad()
def evaluate_widths(G: SlimGenerator, reference: FeatureStats | None, n: int = 1000, seed: int = 0, batch: int = 16,
                    *, widths=None, mic_n: int | None = None, y: int | None = None, extractor=None,
                    kid_subsets: int = 100, classifier: AttributeClassifier | None = None,
                    progress: bool = False) -> tuple[list[dict], MICResult | None]:
    """The paper's table for a SlimGAN generator: per width, FID and KID of `n` samples against `reference`
    (statistics of real images at G's resolution from the same extractor; None skips them: NaN), and mIC over
    `mic_n` samples (default `n`; 0 skips it). Every width renders the same z and classes (`slim_outputs`).
    With a `classifier` (for a class-conditional G), each row also has `class_acc`: `class_accuracy` of the same
    `n` samples.

    Returns (rows {width, gmacs, fid, kid_mean, kid_std, ic, n[, class_acc]}, mIC result or None), where `ic` is
    the width's mean squared feature distance to the other widths (its row of the mIC matrix), NaN without mIC.
    """
    configs = slim_widths(G, widths)
    if classifier is not None:  # a bad one fails here, before the Inception features
        classifier_for(G, classifier)
    mic_n = n if mic_n is None else mic_n
    extractor = _default_extractor(extractor, batch, progress)
    resolutions = [G.arch.resolution] * len(configs)
    features = None
    if reference is not None:  # one Inception pass per width and sample, for FID and (same samples) mIC
        check_reference(reference, G.arch.resolution, extractor)
        with eval_mode(G):
            features = _features_per_resolution(slim_outputs(G, configs, n, seed, batch, y), resolutions, extractor,
                                                n, progress)
    mic = None
    if mic_n and len(configs) > 1:
        if features is not None and mic_n == n:
            mic = _mic_result(features, resolutions, configs, n, extractor)
        else:
            mic = mean_inception_consistency(G, configs, mic_n, seed, batch, extractor=extractor, y=y)
    rows = []
    for k, config in enumerate(configs):
        scores = {"fid": math.nan, "kid_mean": math.nan, "kid_std": math.nan}
        if features is not None:
            scores = score_features(features[(k, G.arch.resolution)], reference, G.arch.resolution, kid_subsets)
        ic = sum(mic.pairwise[k]) / (len(configs) - 1) if mic is not None else math.nan
        rows.append({"width": config.width, "gmacs": round(config.macs / 1e9, 4), "fid": scores["fid"],
                     "kid_mean": scores["kid_mean"], "kid_std": scores["kid_std"], "ic": ic, "n": n})
        if classifier is not None:
            rows[-1]["class_acc"] = class_accuracy(G, config, n, seed, classifier=classifier, batch=batch, y=y)
    return rows, mic


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _mean(rows: list[dict], key: str) -> float:
    """The mean of `key` over the rows that have it (NaN when none has)."""
    values = [r[key] for r in rows if key in r]
    return sum(values) / len(values) if values else math.nan


def markdown_table(models: Sequence[tuple[str, list[dict], MICResult | None]]) -> str:
    """One markdown table for (label, rows, mIC) of several models: a row per width (FID, KID x 1000, mean IC to
    the other widths, and the class accuracy in % when some model has one) and a row per model with the means
    over its widths and its mIC."""
    acc = any("class_acc" in r for _, rows, _ in models for r in rows)

    def acc_cell(value: float) -> str:  # the last column, only when some model has it
        return f" {_fmt(100 * value, 1)} |" if acc else ""

    lines = ["| model | width | GMACs | FID | KID x1e3 | IC to other widths |" + (" class acc. % |" if acc else ""),
             "|---|---:|---:|---:|---:|---:|" + ("---:|" if acc else "")]
    for label, rows, mic in models:
        for r in rows:
            lines.append(f"| {label} | {r['width']:g}x | {r['gmacs']:.4f} | {_fmt(r['fid'], 2)} | "
                         f"{_fmt(r['kid_mean'] * 1e3, 2)} ± {_fmt(r['kid_std'] * 1e3, 2)} | {_fmt(r['ic'], 2)} |"
                         + acc_cell(r.get("class_acc", math.nan)))
        mic_value = mic.value if mic else math.nan
        lines.append(f"| {label} | mean | | {_fmt(_mean(rows, 'fid'), 2)} | | mIC {_fmt(mic_value, 2)} |"
                     + acc_cell(_mean(rows, "class_acc")))
    return "\n".join(lines) + "\n"

"""FID and KID between two image sets, from 2048-d Inception features (see `anycost.metrics.inception`).

- FID (Heusel et al. 2017): Fréchet distance between Gaussians fitted to the two feature sets,
  ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``, with unbiased covariances (ddof = 1). The trace of
  the matrix square root is computed in float64 as ``sum sqrt(eig(A^(1/2) S2 A^(1/2)))`` with
  ``A = S1`` (symmetric PSD, same spectrum as ``S1 S2``): no complex parts, exact for singular
  covariances (fewer samples than dimensions).
- KID (Bińkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over `n_subsets` random subsets of `subset_size` samples
  drawn without replacement from each set; reported as mean and standard deviation over subsets.

Helpers: `dataset_stats` (reference features + statistics of a dataset or image tensor, cached in a
.npz keyed by dataset name, resolution, count, seed and feature extractor), `generator_features`
(features of `n` samples of a generator at one `SubnetConfig`) and `evaluate_generator` (FID + KID).
Scores depend on the image resolution: images below 299 px are upsampled by the extractor.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from anycost.fileio import save_npz

CACHE_VERSION = 1


# -- statistics -------------------------------------------------------------------------------------
def _as_features(features, label: str = "features") -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{label} must be a non-empty [N, D] array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{label} contains NaN or infinite values")
    return arr


@dataclass(frozen=True, eq=False)
class FeatureStats:
    """Gaussian statistics (mean [D], covariance [D, D], float64) of N feature vectors, and optionally
    the features themselves (needed for KID). `key` says what they were computed from."""

    mu: np.ndarray
    sigma: np.ndarray
    n: int
    features: np.ndarray | None = None
    key: str = ""

    @classmethod
    def from_features(cls, features, key: str = "", keep_features: bool = True) -> FeatureStats:
        arr = _as_features(features)
        if arr.shape[0] < 2:
            raise ValueError(f"need at least 2 feature vectors for a covariance, got {arr.shape[0]}")
        mu, sigma = arr.mean(0), np.cov(arr, rowvar=False)
        return cls(mu, sigma, arr.shape[0], arr.astype(np.float32) if keep_features else None, key)

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    def save(self, path) -> None:
        """Atomic write of a .npz (temporary file in the same folder, then os.replace)."""
        path = Path(path)
        arrays = {"mu": self.mu, "sigma": self.sigma, "n": np.int64(self.n), "key": np.str_(self.key),
                  "version": np.int64(CACHE_VERSION)}
        if self.features is not None:
            arrays["features"] = self.features
        save_npz(path, arrays)

    @classmethod
    def load(cls, path) -> FeatureStats:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"]) != CACHE_VERSION:
                raise ValueError(f"{path}: stats cache version {int(data['version'])}, expected {CACHE_VERSION}")
            feats = data["features"] if "features" in data.files else None
            return cls(data["mu"], data["sigma"], int(data["n"]), feats, str(data["key"]))


def _stats_of(a, label: str):
    if isinstance(a, FeatureStats):
        return a.mu, a.sigma
    if isinstance(a, tuple) and len(a) == 2:
        return a
    st = FeatureStats.from_features(_as_features(a, label), keep_features=False)
    return st.mu, st.sigma


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64 (clipped at 0)."""
    mu1, mu2 = (np.asarray(m, dtype=np.float64) for m in (mu1, mu2))
    s1, s2 = (np.asarray(s, dtype=np.float64) for s in (sigma1, sigma2))
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"means must be [D] vectors of one size, got {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"covariances must be [{d}, {d}], got {s1.shape} and {s2.shape}")
    for arr in (mu1, mu2, s1, s2):
        if not np.isfinite(arr).all():
            raise ValueError("statistics contain NaN or infinite values")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    vals, vecs = np.linalg.eigh(s1)
    root1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    middle = root1 @ s2 @ root1
    tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return max(float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt), 0.0)


def fid(a, b) -> float:
    """FID between two feature sets; each is a FeatureStats, a (mu, sigma) pair or features [N, D]."""
    return frechet_distance(*_stats_of(a, "a"), *_stats_of(b, "b"))


@dataclass(frozen=True)
class KID:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 over `n_subsets` subsets."""

    mean: float
    std: float
    n_subsets: int
    subset_size: int


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    off = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(off - 2 * kxy.mean())


def kid(a, b, n_subsets: int = 100, subset_size: int | None = None, seed: int = 0) -> KID:
    """KID between features `a` [N1, D] and `b` [N2, D] (or FeatureStats that keep their features).

    `subset_size` defaults to min(1000, N1, N2) and must be 2..min(N1, N2); subsets are drawn with a
    numpy Generator seeded by `seed` (deterministic).
    """
    fa, fb = (_kid_features(v, label) for v, label in ((a, "a"), (b, "b")))
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"feature sizes differ: {fa.shape[1]} and {fb.shape[1]}")
    n_max = min(fa.shape[0], fb.shape[0])
    if subset_size is None:
        subset_size = min(1000, n_max)
    if isinstance(subset_size, bool) or not isinstance(subset_size, int) or not 2 <= subset_size <= n_max:
        raise ValueError(f"subset_size must be an integer in [2, {n_max}] (the smaller set), got {subset_size!r}")
    if isinstance(n_subsets, bool) or not isinstance(n_subsets, int) or n_subsets < 1:
        raise ValueError(f"n_subsets must be a positive integer, got {n_subsets!r}")
    rng = np.random.default_rng(seed)
    values = np.array([
        _mmd2_unbiased(fa[rng.choice(fa.shape[0], subset_size, replace=False)],
                       fb[rng.choice(fb.shape[0], subset_size, replace=False)])
        for _ in range(n_subsets)
    ])
    return KID(float(values.mean()), float(values.std()), n_subsets, subset_size)


def _kid_features(v, label) -> np.ndarray:
    if isinstance(v, FeatureStats):
        if v.features is None:
            raise ValueError(f"{label}: KID needs the features, these FeatureStats were saved without them")
        v = v.features
    return _as_features(v, label)


# -- feature extraction helpers ------------------------------------------------------------------------
def _default_extractor(extractor, batch: int, progress: bool):
    if extractor is not None:
        return extractor
    from anycost.metrics.inception import InceptionFeatures

    return InceptionFeatures(batch_size=batch, progress=progress)


def _extract(extractor, batches, total: int) -> torch.Tensor:
    if hasattr(extractor, "from_batches"):
        return extractor.from_batches(batches, total=total)
    return torch.cat([torch.as_tensor(extractor(b)).float().cpu() for b in batches])


def _extractor_id(extractor) -> str:
    return getattr(extractor, "identifier", None) or type(extractor).__qualname__


def _image_of(item, index: int) -> torch.Tensor:
    if isinstance(item, (tuple, list)):  # (image, label) datasets
        item = item[0]
    if not isinstance(item, torch.Tensor) or item.ndim != 3 or item.shape[0] != 3:
        got = tuple(item.shape) if isinstance(item, torch.Tensor) else type(item).__name__
        raise ValueError(f"dataset item {index} must be an image [3, H, W] (or a tuple starting with one), got {got}")
    return item


def _dataset_name(data) -> str:
    for attr in ("name", "subset"):
        value = getattr(data, attr, None)
        if isinstance(value, str) and value:
            return f"{type(data).__name__}-{value}"
    root = getattr(data, "root", None)
    if root is not None:
        return f"{type(data).__name__}-{Path(root).name}"
    return type(data).__name__


def stats_key(name: str, resolution: int, n: int, seed: int, extractor_id: str) -> str:
    """The cache key: what the reference statistics were computed from."""
    return f"v{CACHE_VERSION}|name={name}|res={resolution}|n={n}|seed={seed}|features={extractor_id}"


def stats_cache_file(cache_path, key: str, name: str, resolution: int, n: int) -> Path:
    """`cache_path` itself when it ends in .npz, else a file named after the key inside that folder."""
    cache_path = Path(cache_path)
    if cache_path.suffix == ".npz":
        return cache_path
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "data"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return cache_path / f"{safe}_{resolution}px_n{n}_{digest}.npz"


def dataset_stats(data, n: int | None = None, cache_path=None, *, name: str | None = None, extractor=None,
                  batch: int = 32, seed: int = 0, progress: bool = False) -> FeatureStats:
    """Reference features and statistics of `n` images of a dataset or an image tensor [N, 3, R, R].

    Datasets yield [3, R, R] tensors in [-1, 1] or tuples starting with one (e.g. (image, label)).
    With `n` below the dataset size, a random subset drawn with `seed` is used (else all, in order).
    With `cache_path` (a .npz file, or a folder for an automatic file name) the result is cached:
    a cached file is used only when its stored key (name, resolution, n, seed, extractor) matches,
    otherwise it is recomputed and overwritten. `name` defaults to one derived from the dataset; an
    image tensor needs an explicit name to be cached.
    """
    is_tensor = isinstance(data, torch.Tensor)
    if is_tensor:
        if data.ndim != 4 or data.shape[1] != 3:
            raise ValueError(f"an image tensor must be [N, 3, H, W], got shape {tuple(data.shape)}")
        if cache_path is not None and name is None:
            raise ValueError("give a name to cache the statistics of an image tensor")
    elif not hasattr(data, "__len__") or not hasattr(data, "__getitem__"):
        raise TypeError(f"data must be an image tensor or a map-style dataset, got {type(data).__name__}")
    total = len(data)
    n = total if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= total:
        raise ValueError(f"n must be an integer in [2, {total}] (the number of images), got {n!r}")
    if n < total:
        indices = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
    else:
        indices = list(range(total))
    first = data[indices[0]] if is_tensor else _image_of(data[indices[0]], indices[0])
    resolution = int(first.shape[-1])
    extractor = _default_extractor(extractor, batch, progress)
    name = name if name is not None else _dataset_name(data)
    key = stats_key(name, resolution, n, seed if n < total else 0, _extractor_id(extractor))

    path = stats_cache_file(cache_path, key, name, resolution, n) if cache_path is not None else None
    if path is not None and path.is_file():
        try:
            cached = FeatureStats.load(path)
            if cached.key == key:
                return cached
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
            warnings.warn(f"ignoring unreadable stats cache {path}: {err}", stacklevel=2)

    def batches():
        for start in range(0, n, batch):
            chunk = indices[start: start + batch]
            if is_tensor:
                imgs = data[chunk]
            else:
                imgs = torch.stack([_image_of(data[i], i) for i in chunk])
            if imgs.shape[-2:] != (resolution, resolution):
                raise ValueError(f"all images must be {resolution} px like the first, got {tuple(imgs.shape)}")
            yield imgs

    stats = FeatureStats.from_features(_extract(extractor, batches(), n), key=key)
    if path is not None:
        stats.save(path)
    return stats


@torch.no_grad()
def generator_images(G, config=None, n: int = 16, seed: int = 0, batch: int = 16, *, truncation: float = 1.0,
                     impl: str = "auto"):
    """Yield batches of `n` generator samples ([-1, 1]-ish images at the config's resolution).

    z ~ N(0, 1) [style_dim] and the per-layer noise come from one torch.Generator seeded by `seed`
    (on the generator's device), so the same (n, seed, batch) gives the same images.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    device = G.w_avg.device
    rng = torch.Generator(device=device).manual_seed(seed)
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = torch.randn(b, G.arch.style_dim, generator=rng, device=device, dtype=G.w_avg.dtype)
        yield G(G.mapping(z), config=config, noise="random", rng=rng, truncation=truncation, impl=impl)


def generator_features(G, config=None, n: int = 1000, seed: int = 0, batch: int = 16, *, extractor=None,
                       truncation: float = 1.0, impl: str = "auto", progress: bool = False) -> torch.Tensor:
    """Features [n, D] (float32, CPU) of `n` samples of generator `G` at `config` (None: full model)."""
    extractor = _default_extractor(extractor, batch, progress)
    images = generator_images(G, config, n, seed, batch, truncation=truncation, impl=impl)
    return _extract(extractor, images, n)


def evaluate_generator(G, reference: FeatureStats, config=None, n: int = 1000, seed: int = 0, batch: int = 16, *,
                       extractor=None, kid_subsets: int = 100, kid_subset_size: int | None = None,
                       truncation: float = 1.0, impl: str = "auto", progress: bool = False) -> dict:
    """FID (and KID when `reference` keeps its features) of `n` samples of `G` at `config`.

    Returns {"fid", "kid_mean", "kid_std", "n", "resolution", "reference"}; the reference statistics
    must come from images at the config's resolution and from the same extractor. KID uses `kid_subsets`
    subsets of `kid_subset_size` samples (default: half the smaller set, at most 1000).
    """
    resolution = config.resolution if config is not None else G.arch.resolution
    extractor = _default_extractor(extractor, batch, progress)
    check_reference(reference, resolution, extractor)
    feats = generator_features(G, config, n, seed, batch, extractor=extractor, truncation=truncation, impl=impl,
                               progress=progress)
    return score_features(feats, reference, resolution, kid_subsets, kid_subset_size)


def check_reference(reference: FeatureStats, resolution: int, extractor) -> None:
    """ValueError unless `reference` was computed from `resolution` px images with `extractor` (as its key says)."""
    ref_res = re.search(r"\|res=(\d+)\|", reference.key)
    if ref_res and int(ref_res.group(1)) != resolution:
        raise ValueError(f"reference statistics are for {ref_res.group(1)} px images, the samples are {resolution} px")
    ref_id = reference.key.partition("|features=")[2]
    if ref_id and ref_id != _extractor_id(extractor):
        raise ValueError(f"reference features come from {ref_id!r}, not from {_extractor_id(extractor)!r}")


def score_features(feats: torch.Tensor, reference: FeatureStats, resolution: int, kid_subsets: int = 100,
                   kid_subset_size: int | None = None) -> dict:
    """FID and KID of generated features [n, D] (from `resolution` px images) against `reference`, as
    `evaluate_generator` returns them; KID is NaN when the reference keeps no features."""
    n = len(feats)
    if feats.shape[1] != reference.dim:
        raise ValueError(f"generator features are {feats.shape[1]}-d, the reference is {reference.dim}-d")
    out = {"fid": fid(feats, reference), "kid_mean": float("nan"), "kid_std": float("nan"), "n": n,
           "resolution": resolution, "reference": reference.key}
    if reference.features is not None:
        # subsets of half the samples by default: subsets of all of them coincide and their std says nothing
        k = kid(feats, reference, kid_subsets, kid_subset_size or max(2, min(1000, n, reference.n) // 2))
        out.update(kid_mean=k.mean, kid_std=k.std)
    return out

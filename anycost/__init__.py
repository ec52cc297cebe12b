"""anycost: generators that run at any cost (elastic resolution x elastic channels).

>>> import torch, anycost
>>> G, source = anycost.default_generator()            # the bundled 64 px emoji model
>>> w = G.mapping(torch.randn(2, G.arch.style_dim))
>>> preview = G(w, config=G.subnet(resolution=32, ratio=0.25), noise="const")
>>> tuple(preview.shape)
(2, 3, 32, 32)
>>> full = G(w, noise="const")                         # the full 64 px output
>>> tuple(full.shape)
(2, 3, 64, 64)
"""

from anycost import compression
from anycost._version import __version__
from anycost.editing import EditDirections
from anycost.fileio import CheckpointError
from anycost.models.files import load_generator, save_generator
from anycost.models.stylegan2 import (
    Generator,
    GeneratorArch,
    SubnetConfig,
    default_generator,
    export_official,
    sort_channels,
)
from anycost.models.stylegan2.bundled import default_model_path
from anycost.preview import PreviewSession
from anycost.projection import project
from anycost.subnet import SubnetLike

__all__ = [
    "CheckpointError",
    "EditDirections",
    "Generator",
    "GeneratorArch",
    "PreviewSession",
    "SubnetConfig",
    "SubnetLike",
    "__version__",
    "compression",
    "default_generator",
    "default_model_path",
    "export_official",
    "load_generator",
    "project",
    "save_generator",
    "sort_channels",
]

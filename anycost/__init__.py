"""anycost: generators that run at any cost (elastic resolution x elastic channels).

>>> import anycost
>>> G = anycost.load_generator(anycost.default_model_path())   # or anycost.Generator(256)
>>> preview = G(G.mapping(torch.randn(1, G.arch.style_dim)), config=G.subnet(resolution=32, ratio=0.25))
"""

__version__ = "0.1.0"

from anycost.checkpoints import CheckpointError, export_official, load_generator, save_generator  # noqa: E402
from anycost.config import GeneratorArch, SubnetConfig  # noqa: E402
from anycost.models import Generator, sort_channels  # noqa: E402

__all__ = [
    "CheckpointError",
    "Generator",
    "GeneratorArch",
    "SubnetConfig",
    "__version__",
    "export_official",
    "load_generator",
    "save_generator",
    "sort_channels",
]

"""The GAN Compression generators bundled with the package: per task, the teacher and its compressed student.

``load_bundled("fmnist-edges2shoes", "compressed")`` is the searched, fine-tuned sub-network exported as a plain
small generator; "teacher" the full generator it was distilled from. How they were trained and what they score:
`anycost/assets/MODEL_CARD_gan_compression.md`.
"""

from __future__ import annotations

from anycost import assets
from anycost.gan_compression.tasks import get_task
from anycost.models.i2i import I2IGenerator, load_generator

ROLES = ("teacher", "compressed")
#: Asset file names by (task, role).
BUNDLED = {("fmnist-edges2shoes", role): f"fmnist_edges2shoes_{role}.safetensors" for role in ROLES}


def load_bundled(task: str = "fmnist-edges2shoes", role: str = "compressed") -> I2IGenerator:
    """The bundled `role` ("teacher" or "compressed") generator of `task`, in eval mode on the CPU."""
    get_task(task)  # a one-line error naming the tasks for an unknown one
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    name = BUNDLED.get((task, role))
    found = assets.path(name) if name else None
    if found is None:
        bundled = sorted({t for t, _ in BUNDLED})
        raise FileNotFoundError(f"no bundled {role} generator for {task} in this build (bundled tasks: "
                                f"{', '.join(bundled)})")
    return load_generator(found)

"""The image-to-image tasks GAN Compression trains on, built from offline data.

One paired task for now, ``fmnist-edges2shoes``: the paper's edges -> shoes (pix2pix) in miniature. The targets
are the Fashion-MNIST footwear images (sandal, sneaker, ankle boot: 21,000 of the 70,000 train + test images),
padded with black to 32 x 32 (`anycost.data.mnist.grey_to_rgb`'s "pad"); the inputs their Canny edges
(`edges.canny`), drawn black on white as the edges2shoes inputs are. Grey is replicated to RGB, so the generator
and discriminator keep 3 channels. The images are split once into train and validation by a permutation seeded
with the task's own constant seed: every run and every evaluation sees the same validation images whatever
its training seed. (Edges -> emoji at 64 px and the unpaired CycleGAN task between emoji groups come later.)

Pixels are kept as uint8 grey [N, H, W] (43 MB for this task) and become float RGB in [-1, 1] per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from anycost.data.mnist import FASHION_CLASSES, load_fashion_mnist
from anycost.gan_compression.edges import canny


@dataclass(frozen=True)
class PairedTask:
    """A paired task's definition: its source images, edge filter settings and validation split."""

    name: str
    classes: tuple[str, ...]
    image_size: int
    n_validation: int
    split_seed: int
    #: Canny settings: on these 28 px objects, thresholds of 0.05 / 0.1 grey levels per pixel keep the outline and
    #: the straps of sandals, and few texture specks (0.1 / 0.2 dropped thin straps).
    sigma: float = 1.0
    low: float = 0.05
    high: float = 0.1

    def describe(self) -> str:
        return (f"{self.name}: Canny edges -> {', '.join(self.classes)} (Fashion-MNIST), {self.image_size} px, "
                f"{self.n_validation} validation pairs")


#: The tasks by name. Validation: 2,048 images, as the paper holds out of edges2shoes.
TASKS = {
    "fmnist-edges2shoes": PairedTask("fmnist-edges2shoes", ("Sandal", "Sneaker", "Ankle boot"), 32, 2048, 0),
}
SPLITS = ("train", "validation")


def get_task(name: str) -> PairedTask:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    return TASKS[name]


class PairedData:
    """One split of a paired task: `inputs` and `targets` uint8 grey [N, H, W]; `batch(idx)` gives float RGB
    [len(idx), 3, H, W] in [-1, 1] (inputs, targets)."""

    def __init__(self, task: PairedTask, inputs: torch.Tensor, targets: torch.Tensor):
        self.task, self.inputs, self.targets = task, inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        return to_rgb(self.inputs[idx]), to_rgb(self.targets[idx])


def to_rgb(grey: torch.Tensor) -> torch.Tensor:
    """uint8 grey [N, H, W] -> float [N, 3, H, W] in [-1, 1] (the grey value in every channel)."""
    return (grey.float() / 127.5 - 1).unsqueeze(1).expand(-1, 3, -1, -1).contiguous()


@cache
def _task_arrays(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, targets, permutation) of every image of task `name`, built once per process."""
    task = get_task(name)
    images, labels = load_fashion_mnist("all")
    wanted = [FASHION_CLASSES.index(c) for c in task.classes]
    grey = torch.from_numpy(images[np.isin(labels, wanted)].copy())
    pad = (task.image_size - grey.shape[-1]) // 2
    targets = F.pad(grey, (pad, pad, pad, pad))  # black borders, as grey_to_rgb's "pad" makes them
    edges = canny(targets, task.sigma, task.low, task.high)
    inputs = torch.where(edges, 0, 255).to(torch.uint8)  # black lines on white
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(task.split_seed))
    return inputs, targets, order


def load_pairs(name: str, split: str = "train") -> PairedData:
    """The `split` ("train" or "validation") of paired task `name`."""
    task = get_task(name)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    inputs, targets, order = _task_arrays(name)
    idx = order[:task.n_validation] if split == "validation" else order[task.n_validation:]
    return PairedData(task, inputs[idx], targets[idx])


def validation_pairs(task: str, n: int | None = None, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` validation pairs of `task` from the `offset`-th on (all the rest when `n` is None): (inputs, targets)
    float [n, 3, H, W] in [-1, 1]. Sets of disjoint ranges share no pair (the search's fitness pairs and the
    pairs its pick is checked on)."""
    data = load_pairs(task, "validation")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < len(data):
        raise ValueError(f"offset must be an integer in 0..{len(data) - 1} (the validation pairs of {task}), "
                         f"got {offset!r}")
    left = len(data) - offset
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= left):
        raise ValueError(f"n must be an integer in 1..{left} (the validation pairs of {task} from {offset} on), "
                         f"got {n!r}")
    return data.batch(slice(offset, None if n is None else offset + n))

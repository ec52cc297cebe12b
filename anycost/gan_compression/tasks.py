"""The image-to-image tasks GAN Compression trains on, built from offline data: `TASKS`, by name.

Paired tasks (`PairedTask`, pix2pix teachers): the input is the Canny edge map (`edges.canny`) of the target's
grey luminance, drawn black on white as the edges2shoes inputs are.

- ``fmnist-edges2shoes``: the paper's edges -> shoes in miniature. The targets are the Fashion-MNIST footwear
  images (sandal, sneaker, ankle boot: 21,000 of the 70,000 train + test images), padded with black to 32 x 32
  (`anycost.data.mnist.grey_to_rgb`'s "pad"); grey, replicated to RGB.
- ``emoji-edges2emoji``: the 2,308 distinct emoji of faces and people (`anycost.data.emoji`, subset
  "faces_people": 2,317 emoji, a few drawn alike), RGB at 64 px: the largest of the emoji subsets that holds one
  kind of picture ("heads" has 893; "all" adds objects, flags and symbols). Luminance: ITU-R 601 weights, as
  Pillow's "L".

Unpaired tasks (`UnpairedTask`, CycleGAN teachers; their students learn from the teacher's outputs, the paper's
pseudo pairs): two domains, A (the inputs) and B (what A is translated to).

- ``emoji-yellow2toned``: the emoji heads (subset "heads", 64 px) in the default yellow (domain A: 218, the
  smileys and the people without a skin tone) -> the heads with a skin tone (domain B: 675, five tones of 135
  people), CycleGAN's horse -> zebra in miniature (the shapes stay, colours and shading change).

The split: the images are grouped (an emoji's skin-tone variants form one group, as `data.emoji.base_name` names
them; every Fashion-MNIST image is a group of its own), the groups are put in an order drawn with the task's
own constant seed, and the first groups that hold at least `n_validation` images are the validation set: every
run and evaluation sees the same validation images whatever its training seed, and no validation emoji has a
skin-tone variant (with nearly the same edges) among the training images. An unpaired task splits its whole
image set before dividing it into the domains.

Pixels are kept as uint8 [N, C, H, W] (C = 1 for grey, 3 for RGB; 43 MB for the Fashion-MNIST task) and become
float RGB in [-1, 1] per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from anycost.data.emoji import LABEL_NAMES, LABEL_VALUES, EmojiDataset, base_name
from anycost.data.mnist import FASHION_CLASSES, load_fashion_mnist
from anycost.gan_compression.edges import canny

SPLITS = ("train", "validation")
#: ITU-R 601 luminance weights of R, G and B.
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True, kw_only=True)
class Task:
    """What every task has: a name, the image size, its images and their validation split. The images are the
    Fashion-MNIST `classes` (grey, padded to the image size) or the `anycost.data.emoji` subset `emoji_subset`
    (RGB). `n_validation`: the validation set holds at least this many images (whole groups: see the module
    docstring), `split_seed` orders the groups."""

    name: str
    image_size: int
    n_validation: int
    split_seed: int
    classes: tuple[str, ...] = ()
    emoji_subset: str | None = None

    def source(self) -> str:
        if self.emoji_subset is not None:
            return f"emoji ({self.emoji_subset})"
        return f"{', '.join(self.classes)} (Fashion-MNIST)"


@dataclass(frozen=True, kw_only=True)
class PairedTask(Task):
    """Canny edges -> the image. `sigma`, `low`, `high`: the Canny settings (`edges.canny`)."""

    paired: ClassVar[bool] = True
    #: On the 28 px Fashion-MNIST objects, thresholds of 0.05 / 0.1 grey levels per pixel keep the outline and the
    #: straps of sandals, and few texture specks (0.1 / 0.2 dropped thin straps).
    sigma: float = 1.0
    low: float = 0.05
    high: float = 0.1

    def describe(self) -> str:
        return (f"{self.name}: Canny edges -> {self.source()}, {self.image_size} px, at least {self.n_validation} "
                "validation pairs")


@dataclass(frozen=True, kw_only=True)
class UnpairedTask(Task):
    """Domain A -> domain B of one emoji set: A holds the images whose `label` (`data.emoji.LABEL_NAMES`) is one
    of `a_values`, B the others; `a_name` and `b_name` say what they are."""

    paired: ClassVar[bool] = False
    label: str
    a_values: tuple[str, ...]
    a_name: str
    b_name: str

    def describe(self) -> str:
        return (f"{self.name}: {self.source()} {self.a_name} (A) -> {self.b_name} (B), unpaired, {self.image_size} px, "
                f"at least {self.n_validation} validation images")


TASKS: dict[str, Task] = {task.name: task for task in (
    # 2,048 validation images, as the paper holds out of edges2shoes
    PairedTask(name="fmnist-edges2shoes", classes=("Sandal", "Sneaker", "Ankle boot"), image_size=32,
               n_validation=2048, split_seed=0),
    # Colour boundaries in the emoji often differ little in luminance: 0.05 / 0.1 lost most eyes, mouths and hair
    # outlines at 64 px; 0.025 / 0.05 keeps them with few specks (about 12% of the pixels are edges).
    PairedTask(name="emoji-edges2emoji", emoji_subset="faces_people", image_size=64, n_validation=256,
               split_seed=0, low=0.025, high=0.05),
    UnpairedTask(name="emoji-yellow2toned", emoji_subset="heads", image_size=64, n_validation=192, split_seed=0,
                 label="skin_tone", a_values=("none",), a_name="yellow heads (no skin tone)",
                 b_name="heads with a skin tone"),
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    return TASKS[name]


def _task_of_kind(name: str, paired: bool) -> Task:
    task = get_task(name)
    if task.paired != paired:
        raise ValueError(f"task {name} is {'paired' if task.paired else 'unpaired'}: it has no "
                         f"{'domains' if task.paired else 'pairs'}")
    return task


def to_rgb(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] with C = 1 (grey: replicated) or 3 -> float RGB [N, 3, H, W] in [-1, 1]."""
    return (pixels.float() / 127.5 - 1).expand(-1, 3, -1, -1).contiguous()


def luminance(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> its grey luminance uint8 [N, 1, H, W] (grey images as they are)."""
    if pixels.shape[1] == 1:
        return pixels
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    return (pixels.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


class PairedData:
    """One split of a paired task: `inputs` uint8 [N, 1, H, W] (the edges) and `targets` uint8 [N, C, H, W];
    batches are float RGB [n, 3, H, W] in [-1, 1] (inputs, targets)."""

    def __init__(self, task: PairedTask, inputs: torch.Tensor, targets: torch.Tensor):
        self.task, self.inputs, self.targets = task, inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def describe(self) -> str:
        return f"{len(self)} pairs"

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        return to_rgb(self.inputs[idx]), to_rgb(self.targets[idx])

    def sample(self, rng: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` pairs drawn uniformly (with replacement) by `rng`."""
        return self.batch(torch.randint(len(self), (n,), generator=rng))

    def first(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch(slice(0, n))


class UnpairedData:
    """One split of an unpaired task: the images of domain A (`a`) and of domain B (`b`), uint8 [N, C, H, W];
    batches are float RGB [n, 3, H, W] in [-1, 1] (A images, B images), drawn independently."""

    def __init__(self, task: UnpairedTask, a: torch.Tensor, b: torch.Tensor):
        self.task, self.a, self.b = task, a, b

    def describe(self) -> str:
        return f"{len(self.a)} A and {len(self.b)} B images"

    def sample(self, rng: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` A images and `n` B images, each drawn uniformly (with replacement) by `rng`."""
        a = torch.randint(len(self.a), (n,), generator=rng)
        b = torch.randint(len(self.b), (n,), generator=rng)
        return to_rgb(self.a[a]), to_rgb(self.b[b])

    def first(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_rgb(self.a[:n]), to_rgb(self.b[:n])


def split_indices(groups: torch.Tensor, n_validation: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(validation, train) indices of the images whose groups are `groups` (int64 [N], values 0..G-1): the groups
    in an order drawn from `seed`, the first of them that hold at least `n_validation` images held out. With one
    image per group this is the first `n_validation` of a random permutation of the images."""
    n_groups = int(groups.max()) + 1
    perm = torch.randperm(n_groups, generator=torch.Generator().manual_seed(seed))
    rank = torch.empty_like(perm)
    rank[perm] = torch.arange(n_groups)
    order = torch.argsort(rank[groups], stable=True)  # the images group by group, in the drawn order
    held = torch.bincount(groups, minlength=n_groups)[perm].cumsum(0)  # images in the first 1, 2, ... groups
    cut = int(held[torch.searchsorted(held, torch.tensor([n_validation]))[0]])
    return order[:cut], order[cut:]


@cache
def _images(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(pixels uint8 [N, C, S, S], split groups int64 [N], emoji labels int64 [N, L] or None) of every image of
    task `name`, loaded once per process."""
    task = get_task(name)
    if task.emoji_subset is None:
        images, labels = load_fashion_mnist("all")
        wanted = [FASHION_CLASSES.index(c) for c in task.classes]
        grey = torch.from_numpy(images[np.isin(labels, wanted)].copy())
        pad = (task.image_size - grey.shape[-1]) // 2
        pixels = F.pad(grey, (pad, pad, pad, pad)).unsqueeze(1)  # black borders, as grey_to_rgb's "pad" makes them
        return pixels, torch.arange(len(pixels)), None
    data = EmojiDataset(task.image_size, subset=task.emoji_subset, progress=False)
    # The font draws a few emoji alike (some families; the snowboarder in every skin tone): keep each image once,
    # so that no image is both trained on and validated on.
    first: dict[bytes, int] = {}
    keep = [i for i, image in enumerate(data.images) if first.setdefault(image.tobytes(), i) == i]
    bases = [base_name(data.names[i]) for i in keep]
    group_of = {base: g for g, base in enumerate(sorted(set(bases)))}
    pixels = torch.from_numpy(data.images[keep]).permute(0, 3, 1, 2).contiguous()
    return pixels, torch.tensor([group_of[base] for base in bases]), data.labels[keep]


@cache
def _paired_arrays(name: str) -> tuple[torch.Tensor, ...]:
    """(inputs, targets, validation indices, train indices) of paired task `name`, built once per process."""
    task = get_task(name)
    targets, groups, _ = _images(name)
    edges = canny(luminance(targets), task.sigma, task.low, task.high)
    inputs = torch.where(edges, 0, 255).to(torch.uint8)  # black lines on white
    return inputs, targets, *split_indices(groups, task.n_validation, task.split_seed)


@cache
def _unpaired_arrays(name: str) -> tuple[torch.Tensor, ...]:
    """(pixels, in domain A (bool [N]), validation indices, train indices) of unpaired task `name`."""
    task = get_task(name)
    pixels, groups, labels = _images(name)
    wanted = torch.tensor([LABEL_VALUES[task.label].index(v) for v in task.a_values])
    in_a = torch.isin(labels[:, LABEL_NAMES.index(task.label)], wanted)
    return pixels, in_a, *split_indices(groups, task.n_validation, task.split_seed)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def load_pairs(name: str, split: str = "train") -> PairedData:
    """The `split` ("train" or "validation") of paired task `name`."""
    task = _task_of_kind(name, paired=True)
    _check_split(split)
    inputs, targets, validation, train = _paired_arrays(name)
    idx = validation if split == "validation" else train
    return PairedData(task, inputs[idx], targets[idx])


def load_domains(name: str, split: str = "train") -> UnpairedData:
    """The `split` ("train" or "validation") of unpaired task `name`: its A and its B images."""
    task = _task_of_kind(name, paired=False)
    _check_split(split)
    pixels, in_a, validation, train = _unpaired_arrays(name)
    idx = validation if split == "validation" else train
    return UnpairedData(task, pixels[idx[in_a[idx]]], pixels[idx[~in_a[idx]]])


def load_split(name: str, split: str = "train") -> PairedData | UnpairedData:
    """The `split` of task `name`, paired or not (`load_pairs`, `load_domains`)."""
    return (load_pairs if get_task(name).paired else load_domains)(name, split)


def _window(total: int, n, offset, what: str) -> slice:
    """Items `offset` .. `offset + n - 1` of `total` (all the rest when `n` is None), checked."""
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < total:
        raise ValueError(f"offset must be an integer in 0..{total - 1} (the {what}), got {offset!r}")
    left = total - offset
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= left):
        raise ValueError(f"n must be an integer in 1..{left} (the {what} from {offset} on), got {n!r}")
    return slice(offset, None if n is None else offset + n)


def validation_pairs(task: str, n: int | None = None, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` validation pairs of paired `task` from the `offset`-th on (all the rest when `n` is None): (inputs,
    targets) float [n, 3, H, W] in [-1, 1]. Sets of disjoint ranges share no pair (the search's fitness pairs and
    the pairs its pick is checked on)."""
    data = load_pairs(task, "validation")
    return data.batch(_window(len(data), n, offset, f"validation pairs of {task}"))


def validation_inputs(task: str, n: int | None = None, offset: int = 0) -> torch.Tensor:
    """`n` validation inputs of `task` from the `offset`-th on: the edge maps of a paired task
    (`validation_pairs`' inputs), the A images of an unpaired one; float [n, 3, H, W] in [-1, 1]."""
    if get_task(task).paired:
        return validation_pairs(task, n, offset)[0]
    a = load_domains(task, "validation").a
    return to_rgb(a[_window(len(a), n, offset, f"validation A images of {task}")])

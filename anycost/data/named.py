"""Training and evaluation data by name (`--data emoji-heads`) or by image folder (`--data path/`)."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from anycost.data.emoji import EmojiDataset
from anycost.data.image_folder import ImageFolderDataset
from anycost.data.mnist import FashionMNISTDataset, MNIST5kDataset, grey_to_rgb

#: Data sources by name; anything else is an image folder.
NAMED_DATA = ("emoji", "emoji-heads", "emoji-all", "fashion-mnist", "mnist5k")
#: Named sources with a held-out split (their reference set for FID).
TEST_SPLITS = ("fashion-mnist",)
#: Images converted per chunk when a grey set is turned into one tensor (bounds the float copy's memory).
_CHUNK = 4096


def open_dataset(data: str, resolution: int, split: str = "train"):
    """The dataset `data` names (see NAMED_DATA) or an image folder at that path, at `resolution`; `split` "test"
    is the held-out part of a source in TEST_SPLITS."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if split == "test":
        if data not in TEST_SPLITS:
            raise ValueError(f"--data {data!r} has no test split (only {', '.join(TEST_SPLITS)} has one)")
        return FashionMNISTDataset(resolution, split="test")
    if data == "emoji":
        return EmojiDataset(resolution, subset="faces_people")
    if data == "emoji-heads":
        return EmojiDataset(resolution, subset="heads")
    if data == "emoji-all":
        return EmojiDataset(resolution, subset="all")
    if data == "fashion-mnist":
        return FashionMNISTDataset(resolution, split="train")
    if data == "mnist5k":
        return MNIST5kDataset(resolution)
    if not Path(data).is_dir():
        raise FileNotFoundError(f"--data {data!r} is neither one of {NAMED_DATA} nor an image folder")
    return ImageFolderDataset(data, resolution)


def load_images(data: str, resolution: int, progress: bool = True) -> torch.Tensor:
    """Every image of the data source as one uint8 tensor [N, 3, R, R] (training samples from memory)."""
    dataset = open_dataset(data, resolution)
    out = torch.empty(len(dataset), 3, resolution, resolution, dtype=torch.uint8)
    for i in tqdm(range(len(dataset)), desc=f"loading {data}", disable=not progress, leave=False):
        item = dataset[i]
        image = item[0] if isinstance(item, tuple) else item
        out[i] = ((image + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return out


def load_labelled_images(data: str, resolution: int, split: str = "train",
                         progress: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, tuple[str, ...]]:
    """(images uint8 [N, C, R, R], labels int64 [N] or None, class names) of a data source (`open_dataset`).

    The grey sets (Fashion-MNIST, MNIST-5k) keep one channel (C = 1) and their labels; every other source is
    RGB (C = 3) and unlabelled (labels None, no class names).
    """
    dataset = open_dataset(data, resolution, split)
    if not isinstance(dataset, (FashionMNISTDataset, MNIST5kDataset)):
        return load_images(data, resolution, progress), None, ()
    out = torch.empty(len(dataset), 1, resolution, resolution, dtype=torch.uint8)
    for start in range(0, len(dataset), _CHUNK):
        grey = grey_to_rgb(dataset.images[start:start + _CHUNK], resolution, dataset.fit)[:, :1]
        out[start:start + len(grey)] = ((grey + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return out, dataset.labels.clone(), dataset.classes

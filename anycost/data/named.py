"""Training and evaluation data by name (`--data emoji-heads`) or by image folder (`--data path/`)."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from anycost.data.emoji import EmojiDataset
from anycost.data.image_folder import ImageFolderDataset
from anycost.data.mnist import FashionMNISTDataset, MNIST5kDataset

#: Data sources by name; anything else is an image folder.
NAMED_DATA = ("emoji", "emoji-heads", "emoji-all", "fashion-mnist", "mnist5k")


def open_dataset(data: str, resolution: int):
    """The dataset `data` names (see NAMED_DATA) or an image folder at that path, at `resolution`."""
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

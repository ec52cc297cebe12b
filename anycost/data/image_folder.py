"""A folder of images as a dataset of square RGB tensors in [-1, 1].

The helpers here (`check_resolution`, `to_rgb`, `square_resize`, `uint8_to_tensor`) are shared with the emoji dataset.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

DEFAULT_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp")


def check_resolution(resolution: int) -> int:
    """Return `resolution` if it is a power of two >= 8, else raise ValueError."""
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 8 \
            or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution!r}")
    return resolution


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB; transparency (alpha or palette transparency) is composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def square_resize(image: Image.Image, resolution: int) -> Image.Image:
    """Centre-crop to the largest square, then resize to `resolution` x `resolution` (Lanczos)."""
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return image


def uint8_to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in [-1, 1] (copies, so read-only arrays are fine)."""
    return torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float().div(127.5).sub(1.0)


class ImageFolderDataset(Dataset):
    """Every image under `root` (recursive, sorted by relative path), as float [3, R, R] tensors in [-1, 1].

    Images are converted to RGB (alpha on white), centre-cropped to a square and resized with Lanczos.
    A file that cannot be decoded raises OSError naming it; nothing is skipped silently.
    """

    def __init__(self, root, resolution: int, extensions=DEFAULT_EXTENSIONS):
        self.root = Path(root)
        self.resolution = check_resolution(resolution)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder not found (or not a directory): {self.root}")
        exts = {"." + e.lower().lstrip(".") for e in extensions}
        self.files = sorted(
            (p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in exts),
            key=lambda p: p.relative_to(self.root).as_posix(),
        )
        if not self.files:
            raise ValueError(f"no images with extensions {sorted(exts)} under {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def load(self, index: int) -> Image.Image:
        """The image at `index` as an RGB, square, `resolution`-sized Pillow image."""
        path = self.files[index]
        try:
            with Image.open(path) as image:
                image.load()
                return square_resize(to_rgb(image), self.resolution)
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise OSError(f"cannot read image file {path}: {err}") from err

    def __getitem__(self, index: int) -> torch.Tensor:
        return uint8_to_tensor(np.asarray(self.load(index)))

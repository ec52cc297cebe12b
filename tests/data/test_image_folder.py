"""ImageFolderDataset: listing, conversion, range, determinism and errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from anycost.data import ImageFolderDataset


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    (root / "nested" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / "b.png")
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(root / "nested" / "a.JPG")
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)  # fully transparent black: must become white
    Image.fromarray(rgba).save(root / "nested" / "deeper" / "clear.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_listing_shapes_range(folder):
    ds = ImageFolderDataset(folder, 8)
    rel = [p.relative_to(folder).as_posix() for p in ds.files]
    assert rel == ["b.png", "nested/a.JPG", "nested/deeper/clear.png"]
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 8, 8) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(ds[2], torch.ones(3, 8, 8))  # transparent pixels composited on white


def test_deterministic(folder):
    a, b = ImageFolderDataset(folder, 16), ImageFolderDataset(folder, 16)
    assert a.files == b.files
    assert all(torch.equal(a[i], b[i]) for i in range(len(a)))


def test_centre_crop_non_square(tmp_path):
    pixels = np.zeros((8, 24, 3), dtype=np.uint8)
    pixels[:, 8:16] = 255  # white centre third, black sides: the centre crop keeps only white
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    assert torch.equal(ImageFolderDataset(tmp_path, 8)[0], torch.ones(3, 8, 8))


def test_errors(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="not found"):
        ImageFolderDataset(tmp_path / "missing", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataset(tmp_path / "empty", 8)
    for bad in (4, 12, 0, -8, 8.0, True):
        with pytest.raises(ValueError, match="power of two"):
            ImageFolderDataset(folder, bad)
    (folder / "corrupt.png").write_bytes(b"\x89PNG not really")
    ds = ImageFolderDataset(folder, 8)
    index = [p.name for p in ds.files].index("corrupt.png")
    with pytest.raises(OSError, match="corrupt.png"):
        ds[index]

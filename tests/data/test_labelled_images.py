"""`load_labelled_images`: grey sets keep their labels and one channel, RGB sources are unlabelled, and only
Fashion-MNIST has a test split."""

import pytest
import torch
from PIL import Image

from anycost.data import FashionMNISTDataset
from anycost.data.mnist import find_fashion_mnist
from anycost.data.named import load_labelled_images, open_dataset


def _fashion_present() -> bool:
    try:
        return bool(find_fashion_mnist())
    except FileNotFoundError:
        return False


def test_an_image_folder_is_rgb_and_unlabelled(tmp_path):
    for i in range(3):
        Image.new("RGB", (32, 32), (80 * i, 0, 255)).save(tmp_path / f"{i}.png")
    images, labels, classes = load_labelled_images(str(tmp_path), 32, progress=False)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.uint8 and labels is None and classes == ()


def test_splits():
    with pytest.raises(ValueError, match="has no test split"):
        open_dataset("emoji", 32, "test")
    with pytest.raises(ValueError, match="split must be"):
        open_dataset("fashion-mnist", 32, "val")


@pytest.mark.skipif(not _fashion_present(), reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist")
def test_fashion_mnist_test_split():
    images, labels, classes = load_labelled_images("fashion-mnist", 32, "test", progress=False)
    assert images.shape == (10000, 1, 32, 32) and labels.bincount().tolist() == [1000] * 10
    assert classes[labels[0]] == "Ankle boot"
    item, label = FashionMNISTDataset(32, split="test", limit=3)[2]  # the same pixels as the dataset's items
    assert torch.equal(((item[:1] + 1) * 127.5).round().to(torch.uint8), images[2]) and label == labels[2]

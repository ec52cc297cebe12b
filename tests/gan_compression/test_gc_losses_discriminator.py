"""The PatchGAN, the adversarial losses and the feature distillation loss with its adapters."""

import pytest
import torch

from anycost.gan_compression import PatchDiscriminator, default_taps
from anycost.gan_compression.discriminator import layers_for_size, receptive_field
from anycost.gan_compression.distill import Adapter, make_adapters
from anycost.gan_compression.losses import d_loss, distillation_loss, g_loss, reconstruction_loss
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator


def test_patch_sizes_follow_pix2pix_and_scale_with_the_image():
    assert [receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]  # pix2pix's 16, 34 and 70 px PatchGANs
    assert [layers_for_size(s) for s in (32, 64, 256)] == [1, 2, 3]
    D = PatchDiscriminator(6, 8, 1)
    assert D(torch.zeros(2, 6, 32, 32)).shape == (2, 1, 14, 14)
    assert PatchDiscriminator(6, 8, 3)(torch.zeros(1, 6, 256, 256)).shape == (1, 1, 30, 30)  # pix2pix's 30 x 30
    with pytest.raises(ValueError, match=r"the discriminator takes \[N, 6, H, W\], got \(1, 3, 32, 32\)"):
        D(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="ndf must be a positive integer"):
        PatchDiscriminator(6, 0)


def test_gan_losses():
    ones, zeros = torch.ones(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)
    assert d_loss("lsgan", ones, zeros) == 0 and d_loss("lsgan", zeros, ones) == 1
    assert g_loss("lsgan", ones) == 0 and g_loss("lsgan", zeros) == 1
    assert d_loss("hinge", ones, -ones) == 0 and d_loss("hinge", zeros, zeros) == 1
    assert g_loss("hinge", 2 * ones) == -2
    assert reconstruction_loss(ones, zeros) == 1
    with pytest.raises(ValueError, match=r"GAN loss must be one of \('lsgan', 'hinge'\)"):
        g_loss("wgan", ones)


def test_taps_are_the_papers_four():
    assert default_taps(9) == (0, 3, 6, 9) and default_taps(3) == (0, 1, 2, 3)


def test_distillation_is_zero_when_the_student_is_the_teacher_through_identity_adapters():
    torch.manual_seed(0)
    arch = I2IArch.resnet(4, n_blocks=3, image_size=16, step=4)
    G = I2IGenerator(arch)
    adapters = make_adapters(arch, arch)
    with torch.no_grad():
        for a in adapters:
            a.weight.copy_(torch.eye(16).view(16, 16, 1, 1))
            a.bias.zero_()
    x = torch.randn(2, 3, 16, 16)
    _, features = G(x, return_features=default_taps(3))
    assert distillation_loss(features, features, adapters) == 0
    _, other = I2IGenerator(arch)(x, return_features=default_taps(3))
    assert distillation_loss(features, other, adapters) > 0
    with pytest.raises(ValueError, match="one of each per tap"):
        distillation_loss(features[:3], features, adapters)


def test_adapters_slice_to_the_sub_networks_trunk_width():
    """A sub-network's trunk (its leading channels) meets the leading input channels of the adapter; the output is
    the teacher's full width, and only those input channels get gradients."""
    student = I2IArch.resnet(4, n_blocks=3, image_size=16, step=4, separable=True)
    adapter = Adapter(16, 32)
    G = I2IGenerator(student)
    config = I2IConfig(student, (4, 8, 8, 4, 12, 16, 8, 4))
    _, features = G(torch.randn(1, 3, 16, 16), config=config, return_features=[2])
    mapped = adapter(features[0])
    assert features[0].shape[1] == 8 and mapped.shape == (1, 32, 4, 4)
    mapped.square().sum().backward()
    assert adapter.weight.grad[:, :8].abs().sum() > 0 and adapter.weight.grad[:, 8:].abs().sum() == 0

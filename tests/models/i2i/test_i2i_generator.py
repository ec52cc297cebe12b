"""The ResNet image-to-image generator as a supernet: shapes, sub-networks as views of the shared weights,
`export` as a plain smaller network with the same output, and bad inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, export

#: float32 outputs in [-1, 1]; the export runs the same arithmetic on contiguous copies of the weight slices, so
#: only the summation order inside the conv kernels may differ.
EXPORT_TOL = dict(atol=1e-5, rtol=1e-5)


def tiny(separable: bool = True, **kwargs) -> I2IGenerator:
    torch.manual_seed(0)
    return I2IGenerator(I2IArch.resnet(8, n_blocks=3, separable=separable, image_size=16, step=4, **kwargs))


def sub(G: I2IGenerator) -> I2IConfig:
    return I2IConfig(G.arch, (4, 12, 20, 8, 32, 16, 12, 4))


@pytest.mark.parametrize("separable", [False, True])
def test_shapes(separable):
    G = tiny(separable)
    x = torch.rand(2, 3, 16, 24) * 2 - 1
    for config in (None, sub(G), I2IConfig.uniform(G.arch, 0.5)):
        y = G(x, config=config)
        assert y.shape == (2, 3, 16, 24) and y.abs().max() <= 1
    assert G(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)  # the smallest input
    one_channel = I2IGenerator(I2IArch.resnet(8, n_blocks=1, image_size=16, in_channels=1, out_channels=2))
    assert one_channel(torch.zeros(1, 1, 16, 16)).shape == (1, 2, 16, 16)


def test_configs_are_arguments_not_state():
    G = tiny()
    x = torch.randn(1, 3, 16, 16)
    full = G(x)
    small = G(x, config=sub(G))
    assert not torch.allclose(full, small)
    assert torch.equal(G(x), full)  # running a sub-network changed nothing
    assert torch.equal(G(x, config=G.full_config), full)
    assert G.subnet() == G.full_config and G.subnet(ratio=0.5) == I2IConfig.uniform(G.arch, 0.5)
    assert G.subnet(sub(G).widths) == sub(G)
    with pytest.raises(ValueError, match="either widths or ratio"):
        G.subnet(sub(G).widths, ratio=0.5)


@pytest.mark.parametrize("separable", [False, True])
def test_sub_networks_run_on_views_of_the_shared_weights(separable, monkeypatch):
    """Every conv of a sub-network gets a weight and a bias starting at its parameter's first element (the leading
    channels, a view: same storage, no copy; the parameter itself at full width) and of the sub-network's shape."""
    G = tiny(separable)
    params = {p.data_ptr(): p for p in G.parameters()}
    seen = []

    def spy(real):
        def conv(x, weight, bias, *args, **kwargs):
            seen.append((weight, bias))
            return real(x, weight, bias, *args, **kwargs)
        return conv

    monkeypatch.setattr(F, "conv2d", spy(F.conv2d))
    monkeypatch.setattr(F, "conv_transpose2d", spy(F.conv_transpose2d))
    G(torch.randn(1, 3, 16, 16), config=sub(G))
    assert len(seen) == (18 if separable else 12)
    for weight, bias in seen:
        for t in (weight, bias):
            owner = params[t.data_ptr()]
            assert t is owner or t._base is owner
            assert t.untyped_storage().data_ptr() == owner.untyped_storage().data_ptr()
    if not separable:  # config (4, 12, 20, 8, 32, 16, 12, 4); transposed weights list input channels first
        assert [tuple(w.shape[:2]) for w, _ in seen] == [
            (4, 3), (12, 4), (20, 12), (8, 20), (20, 8), (32, 20), (20, 32), (16, 20), (20, 16), (20, 12), (12, 4),
            (3, 4)]


def test_a_sub_network_trains_only_its_leading_channels():
    G = tiny()
    G(torch.randn(1, 3, 16, 16), config=sub(G)).square().mean().backward()
    grad = G.down[1].weight.grad  # down2 at 20 of 32 outputs, 12 of 16 inputs
    assert grad[:20, :12].abs().sum() > 0
    assert grad[20:].abs().sum() == 0 and grad[:, 12:].abs().sum() == 0
    assert G.blocks[0].conv1.pw.weight.grad[8:].abs().sum() == 0


@pytest.mark.parametrize("separable", [False, True])
def test_export_is_a_plain_smaller_network_with_the_same_output(separable):
    G = tiny(separable)
    config = sub(G)
    small = export(G, config)
    assert type(small) is I2IGenerator and small.arch.widths == config.widths and small.arch.separable == separable
    assert small.full_config.macs == config.macs and small.full_config.params == config.params
    x = torch.rand(3, 3, 16, 20) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(small(x), G(x, config=config), **EXPORT_TOL)
    assert small.down[1].weight.shape == (20, 12, 3, 3) and small.down[1].weight.is_contiguous()
    assert small.down[1].weight.untyped_storage().data_ptr() != G.down[1].weight.untyped_storage().data_ptr()
    with torch.no_grad():  # real copies: changing the supernet leaves the export alone
        G.down[1].weight.zero_()
    assert small.down[1].weight.abs().sum() > 0


def test_export_of_the_full_network_keeps_the_dtype_and_mode():
    G = tiny().double().train()
    small = export(G, G.full_config)
    assert small.stem.weight.dtype == torch.float64 and small.training
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(small(x), G(x))


@pytest.mark.parametrize(("x", "message"), [
    (torch.zeros(1, 1, 16, 16), "input has 1 channels, this generator takes 3"),
    (torch.zeros(1, 3, 18, 16), "input is 18x16 px: height and width must be multiples of 4 and at least 8"),
    (torch.zeros(1, 3, 4, 4), "input is 4x4 px: height and width must be multiples of 4 and at least 8"),
    (torch.zeros(3, 16, 16), r"input must be a float tensor \[N, 3, H, W\], got \(3, 16, 16\)"),
    (torch.zeros(1, 3, 16, 16, dtype=torch.uint8), r"input must be a float tensor"),
    (torch.zeros(0, 3, 16, 16), "empty batch"),
])
def test_bad_inputs(x, message):
    with pytest.raises(ValueError, match=message):
        tiny()(x)


def test_a_config_of_another_arch():
    G = tiny()
    other = I2IArch.resnet(8, n_blocks=3, separable=False, image_size=16, step=4)
    with pytest.raises(ValueError, match=r"config is for another generator \(ResNet ngf 8, 3 dense blocks, 16 px; "
                                         r"this one is ResNet ngf 8, 3 separable blocks, 16 px\)"):
        G(torch.zeros(1, 3, 16, 16), config=I2IConfig.full(other))
    small = export(G, sub(G))
    with pytest.raises(ValueError, match="config is for another generator"):  # the supernet's config on its export
        small(torch.zeros(1, 3, 16, 16), config=sub(G))
    with pytest.raises(TypeError, match="config must be an I2IConfig, got tuple"):
        G(torch.zeros(1, 3, 16, 16), config=sub(G).widths)
    with pytest.raises(ValueError, match="config is for another generator"):
        export(G, I2IConfig.full(other))


@pytest.mark.parametrize("separable", [False, True])
def test_return_features_gives_the_trunk_after_k_blocks(separable):
    """Feature k is the trunk after k residual blocks (0: the downsampled input of block 0), at the sub-network's
    trunk width; the output is unchanged."""
    G = tiny(separable)
    config = sub(G)
    seen = []
    G.down[1].register_forward_hook(lambda m, args, out: seen.append(("down", args[0])))
    for block in G.blocks:
        block.register_forward_hook(lambda m, args, out: seen.append(("block", out)))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        plain = G(x, config=config)
        seen.clear()
        out, features = G(x, config=config, return_features=[3, 0, 1])
    assert torch.equal(out, plain)
    blocks = [t for kind, t in seen if kind == "block"]
    assert [f.shape for f in features] == [(2, 20, 4, 4)] * 3
    assert torch.equal(features[0], blocks[2]) and torch.equal(features[2], blocks[0])
    trunk_in = G.blocks[0]  # feature 0 is what block 0 received
    with torch.no_grad():
        assert torch.equal(trunk_in(features[1], config.widths[3]), blocks[0])
    assert G(x, return_features=[])[1] == []


@pytest.mark.parametrize("taps", [[4], [-1], [1.0], [True]])
def test_bad_feature_taps(taps):
    with pytest.raises(ValueError, match=r"feature taps are residual block counts 0\.\.3"):
        tiny()(torch.zeros(1, 3, 16, 16), return_features=taps)

import json

import pytest

from anycost.models.stylegan2 import GeneratorArch, SubnetConfig, n_layers

CONFIG_F = GeneratorArch(1024)


def test_uniform_widths_follow_the_official_formula_with_the_cap():
    c = SubnetConfig.uniform(CONFIG_F, 0.25)
    assert c.widths == (512,) * 6 + (256, 256, 128, 128, 64, 64, 32, 32, 16, 16, 8, 8)
    assert SubnetConfig.uniform(CONFIG_F, 1.0) == SubnetConfig.full(CONFIG_F)
    assert len(SubnetConfig.full(CONFIG_F).widths) == 18 == n_layers(1024)
    assert SubnetConfig.uniform(CONFIG_F, 0.5, resolution=256).widths[-2:] == (64, 64)


@pytest.mark.parametrize(("res", "ratio", "true_g", "paper_g"), [
    (1024, 1.0, "75.4", "144.4"), (1024, 0.25, "6.8", None), (256, 1.0, "45.4", "85"),
    (256, 0.5, "15.0", None), (256, 0.25, "4.69", "9.20"), (128, 0.25, "3.7", None),
])
def test_macs_reproduce_design_and_paper_figures(res, ratio, true_g, paper_g):
    c = SubnetConfig.uniform(CONFIG_F, ratio, res)
    digits = len(true_g.split(".")[1])
    assert f"{c.macs / 1e9:.{digits}f}" == true_g
    if paper_g:
        digits = len(paper_g.split(".")[1]) if "." in paper_g else 0
        assert f"{c.paper_macs / 1e9:.{digits}f}" == paper_g


def test_true_macs_by_hand_for_a_tiny_flexible_config():
    arch = GeneratorArch(8, channel_multiplier=0.0625, channel_max=8, style_dim=4, n_mlp=1)
    assert arch.full_widths == (8, 8, 8, 8)
    c = SubnetConfig.flexible(arch, [5, 6, 7, 3])
    expected = (
        4 * 4  # mapping
        + 4 * 5 + 16 * 6 * 5 * 9 + 4 * 6 + 16 * 3 * 6  # conv1, to_rgb1
        + 4 * 6 + 16 * 6 * 7 * 9 + 64 * 7 * 16  # upconv at input size + blur
        + 4 * 7 + 64 * 3 * 7 * 9  # conv
        + 4 * 3 + 64 * 3 * 3 + 64 * 3 * 16  # to_rgb + skip upsample
    )
    assert c.macs == expected


def test_flexible_and_ratio_constructors():
    arch = GeneratorArch(64, channel_multiplier=0.5)
    full = arch.full_widths
    c = SubnetConfig.flexible(arch, full[:6])
    assert c.resolution == 16 and c.is_full
    r = SubnetConfig.from_ratios(arch, [1.0, 0.5, 0.25, 1.0, 0.5, 0.25, 0.75, 0.75, 0.5, 0.5])
    assert r.widths[1] == full[1] // 2 and r.resolution == 64
    assert r.ratios[2] == 0.25
    assert r.describe() == "64 px, flexible"
    assert SubnetConfig.uniform(arch, 0.5).describe() == "64 px, ratio 0.5"
    assert SubnetConfig.uniform(arch, 0.625, 32).describe() == "32 px, ratio 0.625"  # a finer ratio too
    assert SubnetConfig.from_ratios(arch, [0.625] * 9 + [0.5]).describe() == "64 px, flexible"


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(resolution=48, widths=(1,) * 8), "unknown resolution 48"),
    (dict(resolution=2048, widths=(1,) * 20), "unknown resolution 2048"),
    (dict(resolution=4, widths=(1, 1)), "unknown resolution 4"),
    (dict(resolution=16, widths=(512,) * 5), "needs 6 layer widths, got 5"),
    (dict(resolution=16, widths=(512,) * 5 + (513,)), r"layer 5 \(16 px\) must be in \[1, 512\], got 513"),
    (dict(resolution=16, widths=(512,) * 5 + (0,)), "must be in"),
])
def test_invalid_configs_are_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SubnetConfig(CONFIG_F, **kwargs)


def test_invalid_values_in_constructors():
    with pytest.raises(TypeError, match="must be an int"):
        SubnetConfig.flexible(CONFIG_F, [512.0] * 4)
    for bad in (0, 1.5, -0.25, True):
        with pytest.raises(ValueError, match="ratio must be in"):
            SubnetConfig.uniform(CONFIG_F, bad)
    with pytest.raises(ValueError, match="cannot infer a resolution"):
        SubnetConfig.flexible(CONFIG_F, [512] * 5)
    with pytest.raises(ValueError, match="only 18 layers"):
        SubnetConfig.from_ratios(CONFIG_F, [1.0] * 19)
    with pytest.raises(ValueError, match="power of two"):
        GeneratorArch(100)
    with pytest.raises(ValueError, match="between 8 and 1024"):
        GeneratorArch(2048)


def test_json_round_trip_hash_and_equality():
    c = SubnetConfig.uniform(CONFIG_F, 0.5, 256)
    again = SubnetConfig.from_json(c.to_json())
    assert again == c and hash(again) == hash(c)
    assert len({c, again, SubnetConfig.full(CONFIG_F)}) == 2
    data = json.loads(c.to_json())
    assert data["version"] == 1 and data["resolution"] == 256
    with pytest.raises(ValueError, match="version"):
        SubnetConfig.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="lacks"):
        SubnetConfig.from_dict({"version": 1, "arch": data["arch"]})
    with pytest.raises(ValueError, match="unknown generator architecture fields"):
        SubnetConfig.from_dict({**data, "arch": {**data["arch"], "depth": 3}})
    with pytest.raises(ValueError, match="not valid SubnetConfig JSON"):
        SubnetConfig.from_json("{nope")

"""`I2IArch` and `I2IConfig`: validation with clear errors, JSON round trips, the sub-network protocol."""

from __future__ import annotations

import json

import pytest

from anycost.models.i2i import I2IArch, I2IConfig
from anycost.subnet import SubnetLike

ARCH = I2IArch.resnet(16, n_blocks=3, separable=True, image_size=32, step=4)


def test_the_papers_layout():
    arch = I2IArch.resnet(64)
    assert arch.widths == (64, 128, 256, *(256,) * 9, 128, 64)
    assert arch.n_blocks == 9 and arch.ngf == 64 and arch.image_size == 256 and arch.step == 8
    assert arch.layer_names[:4] == ("stem", "down1", "down2", "block0") and arch.layer_names[-2:] == ("up1", "up2")
    assert arch.describe() == "ResNet ngf 64, 9 dense blocks, 256 px"
    odd = I2IArch((8, 16, 24, 8, 16, 8))
    assert odd.ngf is None and odd.describe() == "ResNet widths 8/16/24/8/16/8, 1 dense blocks, 256 px"
    assert ARCH.width_choices()[0] == (4, 8, 12, 16) and len(ARCH.width_choices()) == len(ARCH.widths)


def test_a_config_is_a_subnet_value():
    c = I2IConfig(ARCH, (8, 16, 32, 16, 64, 48, 16, 8))
    assert isinstance(c, SubnetLike)
    assert c == I2IConfig(ARCH, [8, 16, 32, 16, 64, 48, 16, 8]) and hash(c) == hash(I2IConfig(ARCH, c.widths))
    assert I2IConfig.from_json(c.to_json()) == c
    assert json.loads(c.to_json())["version"] == 1
    assert c.describe() == f"32 px, 8/16/32 blocks 16,64,48 up 16/8, {c.macs / 1e9:.3g} G MACs"
    assert I2IConfig.full(ARCH).describe().startswith("32 px, full, ")
    assert I2IConfig.full(ARCH).macs > c.macs > I2IConfig(ARCH, (4,) * 8).macs


def test_uniform_rounds_down_to_the_step():
    assert I2IConfig.uniform(ARCH, 0.5).widths == (8, 16, 32, 32, 32, 32, 16, 8)
    assert I2IConfig.uniform(ARCH, 0.3).widths == (4, 8, 16, 16, 16, 16, 8, 4)  # 4.8 -> 4, 9.6 -> 8, 19.2 -> 16
    assert I2IConfig.uniform(ARCH, 0.01).widths == (4,) * 8  # never below one step
    assert I2IConfig.uniform(ARCH, 1).is_full
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        I2IConfig.uniform(ARCH, 1.5)


@pytest.mark.parametrize(("widths", "error", "message"), [
    ((8, 16, 32, 16, 64, 48, 16), ValueError, r"needs 8 widths \(stem, down1, down2, 3 residual blocks, up1, up2\), "
                                              r"got 7"),
    ((8, 16, 32, 16, 68, 48, 16, 8), ValueError, "width of layer 'block1' is 68, above the supernet's 64"),
    ((8, 16, 32, 16, 64, 48, 16, 6), ValueError, "width of layer 'up2' must be a positive multiple of 4, got 6"),
    ((8, 16, 32, 16, 64, 48, 0, 8), ValueError, "width of layer 'up1' must be a positive multiple of 4, got 0"),
    ((8, 16, 32.0, 16, 64, 48, 16, 8), TypeError, "width of layer 'down2' must be an int, got 32.0"),
])
def test_bad_configs(widths, error, message):
    with pytest.raises(error, match=message):
        I2IConfig(ARCH, widths)


def test_a_config_needs_an_arch():
    with pytest.raises(TypeError, match="arch must be an I2IArch, got dict"):
        I2IConfig(ARCH.to_dict(), ARCH.widths)


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not valid I2IConfig JSON"),
    ("[1, 2]", "must be a JSON object, got list"),
    ('{"version": 2, "arch": {}, "widths": []}', "unsupported I2IConfig version 2"),
    ('{"version": 1, "widths": []}', r"lacks \['arch'\]"),
    ('{"version": 1, "arch": {"widths": [8, 16, 32, 16, 8]}, "widths": 5}', "widths must be a list, got int"),
    ('{"version": 1, "arch": {"widths": [8, 16, 32, 16, 8], "depth": 3}, "widths": []}', r"unknown I2IArch fields"),
])
def test_bad_config_json(text, message):
    with pytest.raises(ValueError, match=message):
        I2IConfig.from_json(text)


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(widths=(8, 16, 32, 8, 16)), r"widths needs stem, down1, down2, at least one residual block, up1 and up2"),
    (dict(widths=(8, 16, 30, 8, 16, 8)), "width of layer 'down2' must be a multiple of the step 8, got 30"),
    (dict(widths=(8, 16, 32, 8, 16, 8), image_size=30), "image_size must be a multiple of 4 and at least 8, got 30"),
    (dict(widths=(8, 16, 32, 8, 16, 8), image_size=4), "image_size must be a multiple of 4 and at least 8, got 4"),
    (dict(widths=(8, 16, 32, 8, 16, 8), step=0), "step must be a positive integer, got 0"),
    (dict(widths=(8, 16, 32, 8, 16, 8), separable=1), "separable must be a bool, got 1"),
])
def test_bad_archs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        I2IArch(**kwargs)


def test_arch_json_round_trip():
    assert I2IArch.from_dict(json.loads(json.dumps(ARCH.to_dict()))) == ARCH
    with pytest.raises(ValueError, match="needs a list of widths"):
        I2IArch.from_dict({"image_size": 32})

"""`SlimArch` and `SlimConfig`: validation, MACs (a hand count, torch's FLOP counter, monotone in width) and
the JSON round trip of the sub-network protocol."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from anycost.models.slimgan import SlimArch, SlimConfig, build_generator
from anycost.subnet import SubnetLike

#: Tiny: z 4, a 2 x 2 bottom map, two upsamplings to 8 px, widths 0.5 and 1.
TINY = dict(z_dim=4, bottom_width=2, widths=(0.5, 1.0))


def test_hand_count_resnet():
    arch = SlimArch("resnet", (8, 8, 4), **TINY)
    config = SlimConfig(arch, 0.5)
    assert config.channels == (4, 4, 2)
    linear = 4 * (2 * 2 * 4)  # z 4 -> 2 x 2 x 4
    block1 = 4 * 4 * (4 * 4 * 9 + 4 * 4 * 9 + 4 * 4)  # at 4 px: conv 4->4, conv 4->4, 1x1 shortcut 4->4
    block2 = 8 * 8 * (4 * 2 * 9 + 2 * 2 * 9 + 4 * 2)  # at 8 px: conv 4->2, conv 2->2, shortcut 4->2
    to_image = 8 * 8 * 2 * 3 * 9
    assert config.macs == linear + block1 + block2 + to_image == 15_808


def test_hand_count_dcgan():
    arch = SlimArch("dcgan", (8, 4, 2), **TINY)
    config = SlimConfig(arch, 0.5)
    assert config.channels == (4, 2, 1)
    # linear; 4x4 transposed convs at their input sizes 2 and 4 px; the 3x3 conv to the image at 8 px
    assert config.macs == 4 * 16 + 2 * 2 * 4 * 2 * 16 + 4 * 4 * 2 * 1 * 16 + 8 * 8 * 1 * 3 * 9 == 2_816


@pytest.mark.parametrize("arch", [SlimArch.resnet32(16, z_dim=8, num_classes=3),
                                  SlimArch.dcgan32(32, z_dim=8)], ids=["resnet", "dcgan"])
def test_macs_match_torch_flop_counter_and_grow_with_width(arch):
    """torch counts 2 FLOPs per multiply-accumulate of linears and convs, and none for BN or activations."""
    G = build_generator(arch).eval()
    y = torch.zeros(1, dtype=torch.long) if arch.conditional else None
    macs = []
    for config in G.configs():
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            G(torch.randn(1, arch.z_dim), y, width=config)
        assert counter.get_total_flops() == 2 * config.macs
        macs.append(config.macs)
    assert macs == sorted(macs) and len(set(macs)) == len(macs)


def test_json_round_trip_and_protocol():
    config = SlimConfig(SlimArch.dcgan32(64, num_classes=10, cbn="switchable", widths=(0.5, 1.0)), 0.5)
    assert isinstance(config, SubnetLike)
    again = SlimConfig.from_json(config.to_json())
    assert again == config and hash(again) == hash(config) and again.macs == config.macs
    assert json.loads(config.to_json())["version"] == 1
    assert config.describe() == "slimgan dcgan 32 px, width 0.5x [32, 16, 8, 4]"
    assert "\n" not in config.describe()
    assert SlimConfig(config.arch, 1) == SlimConfig(config.arch, 1.0)


@pytest.mark.parametrize("text, message", [
    ("{", "not valid SlimConfig JSON"),
    ("[]", "must be a JSON object"),
    ('{"version": 2}', "unsupported SlimConfig version 2"),
    ('{"version": 1, "width": 0.5}', "lacks ['arch']"),
    ('{"version": 1, "width": 0.5, "arch": {"backbone": "resnet", "channels": [8, 8], "depth": 3}}',
     "unknown SlimArch fields: ['depth']"),
    ('{"version": 1, "width": 0.5, "arch": {"channels": [8, 8]}}', "bad SlimArch"),
    ('{"version": 1, "width": 0.3, "arch": {"backbone": "resnet", "channels": [8, 8]}}',
     "width 0.3 is not one of this generator's widths"),
])
def test_bad_json(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SlimConfig.from_json(text)


@pytest.mark.parametrize("kwargs, message", [
    (dict(backbone="vgg", channels=(8, 8)), "backbone must be one of"),
    (dict(backbone="resnet", channels=(8,)), "at least 2 stages"),
    (dict(backbone="resnet", channels=(8, 8), cbn="naive"), "cbn must be one of"),
    (dict(backbone="resnet", channels=(8, 8), widths=(1.0, 0.5)), "strictly increasing"),
    (dict(backbone="resnet", channels=(8, 8), widths=(0.0, 1.0)), r"in \(0, 1\]"),
    (dict(backbone="resnet", channels=(8, 2)), "width 0.25 leaves no channel"),
    (dict(backbone="resnet", channels=(8, 8), num_classes=-1), "num_classes must be an integer >= 0"),
    (dict(backbone="resnet", channels=(8, 8), z_dim=0), "z_dim must be a positive integer"),
])
def test_bad_arch(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlimArch(**kwargs)


def test_arch_values():
    arch = SlimArch.resnet32()
    assert arch.resolution == 32 and arch.widths == (0.25, 0.5, 0.75, 1.0) and not arch.conditional
    assert arch.width_channels(0.75) == (192,) * 4
    assert SlimArch.from_dict(json.loads(json.dumps(arch.to_dict()))) == arch
    with pytest.raises(TypeError, match="width must be a number or a SlimConfig"):
        arch.width_index("0.5")

"""`SlimTrainConfig`: the paper's defaults per backbone, the JSON round trip and one-line errors."""

import pytest

from anycost.models.slimgan import SlimArch
from anycost.training.slimgan import SlimTrainConfig


def test_backbone_defaults():
    dcgan = SlimTrainConfig.create("dcgan")
    assert dcgan.arch.channels == (128, 64, 32, 16) and dcgan.ndf == 128
    assert dcgan.betas == (0.5, 0.999) and dcgan.n_dis == 1
    resnet = SlimTrainConfig.create("resnet", num_classes=10, img_channels=1)
    assert resnet.arch.channels == (64,) * 4 and resnet.ndf == 32 and resnet.betas == (0.0, 0.9)
    assert resnet.n_dis == 5 and resnet.arch.num_classes == 10 and resnet.arch.img_channels == 1
    assert dcgan.lr == 2e-4 and dcgan.lam == 20 and dcgan.distill == "stepwise" and dcgan.d_mode == "shared"
    assert SlimTrainConfig.create("dcgan", n_dis=3, lam=None).n_dis == 3  # None keeps the default


def test_json_round_trip():
    cfg = SlimTrainConfig.create("resnet", widths=(0.5, 1.0), num_classes=4, n_share=1, distill="widest", ema=0.99)
    assert SlimTrainConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="not valid"):
        SlimTrainConfig.from_json("{")
    with pytest.raises(ValueError, match="version"):
        SlimTrainConfig.from_json('{"arch": {}}')


@pytest.mark.parametrize("change, message", [
    ({"d_mode": "bogus"}, "d_mode must be one of"),
    ({"distill": "all"}, "distill must be one of"),
    ({"lam": -1.0}, "lambda"),
    ({"ema": 1.0}, "ema"),
    ({"batch": 0}, "batch must be a positive integer"),
    ({"n_share": 8}, "n_share must be at most 7"),
    ({"n_share": 1, "d_mode": "same"}, "n_share applies to d_mode 'shared' only"),
    ({"betas": (0.5, 1.0)}, "betas"),
    ({"arch": SlimArch.dcgan32(widths=(0.5,))}, "needs at least two widths"),
])
def test_bad_values(change, message):
    with pytest.raises(ValueError, match=message):
        SlimTrainConfig.create("dcgan").replace(**change)


def test_unknown_backbone():
    with pytest.raises(ValueError, match="backbone must be one of"):
        SlimTrainConfig.create("vgg")

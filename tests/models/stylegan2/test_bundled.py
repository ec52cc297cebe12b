import sys

import pytest
import torch

from anycost import save_generator
from anycost.models.stylegan2.bundled import (
    DEFAULT_ARCH,
    DEFAULT_DATA,
    default_generator,
    default_model_path,
    training_data,
)
from anycost.models.stylegan2.checkpoints import read_metadata


@pytest.mark.parametrize("bundled", [True, False], ids=["bundled-if-present", "random-stand-in"])
def test_default_generator_is_deterministic_and_leaves_the_global_rng_alone(monkeypatch, bundled):
    if not bundled:  # the stand-in a build without the model file gets, tested whether or not this one has it
        monkeypatch.setattr(sys.modules[default_generator.__module__], "default_model_path", lambda: None)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    G1, description = default_generator()
    assert torch.equal(torch.rand(3), expected)
    G2, _ = default_generator()
    assert torch.equal(G1.input.input, G2.input.input)  # the same seeded init or the same file: bit for bit
    assert G1.arch == DEFAULT_ARCH
    if not bundled:
        assert "RANDOM WEIGHTS" in description


def test_the_bundled_model_is_the_default_architecture_trained_by_anycost_train():
    path = default_model_path()
    if path is None:
        pytest.skip("this build bundles no trained model (anycost/assets/emoji64.safetensors is absent)")
    G, description = default_generator()
    assert G.arch == DEFAULT_ARCH and "bundled" in description
    assert path.stat().st_size <= 25 * 2**20
    info = read_metadata(path)
    assert info["trained_by"] == "anycost train" and info["train_config"]["data"] == DEFAULT_DATA


def test_training_data_comes_from_the_files_metadata(tmp_path, tiny_generator):
    trained = save_generator(tiny_generator, tmp_path / "fashion.safetensors",
                             metadata={"train_config": {"data": "fashion-mnist"}})
    assert training_data(trained) == "fashion-mnist"
    assert training_data(save_generator(tiny_generator, tmp_path / "plain.safetensors")) == DEFAULT_DATA
    assert training_data(tmp_path / "official.pt") == DEFAULT_DATA  # other formats carry no training config
    assert training_data() == "emoji-heads"  # the bundled model was trained on the 893 emoji heads

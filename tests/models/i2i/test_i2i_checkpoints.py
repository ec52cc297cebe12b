"""Save / load of image-to-image generators: one safetensors file tagged with the family, the arch and a format
version; every bad file is a one-line CheckpointError and nothing is half-loaded."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from anycost.fileio import CheckpointError
from anycost.models.i2i import I2IArch, I2IConfig, I2IGenerator, export, load_generator, read_metadata, save_generator
from anycost.models.i2i.checkpoints import FORMAT

ARCH = I2IArch.resnet(8, n_blocks=2, separable=True, image_size=16, step=4)


@pytest.fixture
def G():
    torch.manual_seed(0)
    return I2IGenerator(ARCH).eval()


def test_round_trip(G, tmp_path):
    path = save_generator(G, tmp_path / "g.safetensors", metadata={"task": "edges2shoes"})
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]  # the atomic write left no temporary file
    loaded = load_generator(path)
    assert loaded.arch == ARCH and not loaded.training
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), G(x))
        config = I2IConfig.uniform(ARCH, 0.5)
        assert torch.equal(loaded(x, config=config), G(x, config=config))
    assert read_metadata(path) == {"task": "edges2shoes"}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["family"] == "i2i" and meta["format"] == FORMAT and meta["format_version"] == "1"
    assert I2IArch.from_dict(json.loads(meta["arch"])) == ARCH


def test_an_exported_sub_network_round_trips(G, tmp_path):
    config = I2IConfig(ARCH, (4, 8, 16, 8, 32, 12, 4))
    small = export(G, config)
    loaded = load_generator(save_generator(small, tmp_path / "small.safetensors",
                                           metadata={"config": config.to_json()}))
    assert loaded.arch.widths == config.widths
    assert I2IConfig.from_json(read_metadata(tmp_path / "small.safetensors")["config"]) == config
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), G(x, config=config))


def _rewrite(path, tensors=None, **meta_changes):
    """Rewrite the file at `path` with some tensors and metadata entries changed (None deletes one)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    meta = {k: v for k, v in {**meta, **meta_changes}.items() if v is not None}
    save_file(load_file(str(path)) if tensors is None else tensors, str(path), metadata=meta)


@pytest.mark.parametrize(("change", "message"), [
    (dict(format="anycost-generator"), r"not an anycost i2i generator file \(format='anycost-generator'\)"),
    (dict(format_version="2"), "unsupported i2i generator format version '2'"),
    (dict(family="stylegan2"), "family 'stylegan2', expected 'i2i'"),
    (dict(arch=None), "bad architecture metadata"),
    (dict(arch='{"widths": [8, 16, 30, 8, 16, 8]}'), "bad architecture metadata .*multiple of the step"),
])
def test_bad_metadata(G, tmp_path, change, message):
    path = save_generator(G, tmp_path / "g.safetensors")
    _rewrite(path, **change)
    with pytest.raises(CheckpointError, match=message):
        load_generator(path)


def test_bad_tensors(G, tmp_path):
    path = save_generator(G, tmp_path / "g.safetensors")
    state = load_file(str(path))
    _rewrite(path, {k: v for k, v in state.items() if k != "head.bias"})
    with pytest.raises(CheckpointError, match="missing key 'head.bias'"):
        load_generator(path)
    _rewrite(path, {**state, "stem.weight": torch.zeros(4, 3, 7, 7)})
    with pytest.raises(CheckpointError, match=r"'stem.weight' has shape \(4, 3, 7, 7\), expected \(8, 3, 7, 7\)"):
        load_generator(path)
    _rewrite(path, {**state, "head.bias": torch.full((3,), float("nan"))})
    with pytest.raises(CheckpointError, match="'head.bias' holds NaN"):
        load_generator(path)


def test_missing_truncated_and_foreign_files(G, tmp_path):
    with pytest.raises(FileNotFoundError, match="no i2i generator at"):
        load_generator(tmp_path / "absent.safetensors")
    path = save_generator(G, tmp_path / "g.safetensors")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(path)
    torch.save(G.state_dict(), tmp_path / "g.pt")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(tmp_path / "g.pt")

"""The image -> W+ encoder: shapes, files, generator checks."""

import dataclasses

import pytest
import torch

from anycost.fileio import CheckpointError
from anycost.models.stylegan2 import Generator
from anycost.models.stylegan2.bundled import DEFAULT_ARCH
from anycost.models.stylegan2.checkpoints import save_generator
from anycost.projection import Encoder, load_encoder, save_encoder


def test_shapes_and_untrained_code_is_the_mean(tiny_generator):
    G = tiny_generator
    E = Encoder(G.arch)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert E(x).shape == (2, G.arch.n_styles, G.arch.style_dim)
    assert torch.equal(E.encode(G, x), G.w_avg.expand(2, G.arch.n_styles, -1))
    with pytest.raises(ValueError, match=r"\[N, 3, 32, 32\]"):
        E(torch.zeros(1, 3, 64, 64))


def test_bundled_size_fits():
    params = sum(p.numel() for p in Encoder(DEFAULT_ARCH).parameters())
    assert params * 4 <= 3e6


def test_batch_independent(tiny_generator):
    E = Encoder(tiny_generator.arch)
    torch.nn.init.normal_(E.head.weight, std=0.1)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(E(x)[1:2], E(x[1:2]), atol=1e-5)


def test_save_load_roundtrip_and_refusals(tmp_path, tiny_generator, tiny_arch):
    G = tiny_generator
    E = Encoder(G.arch, width=16)
    torch.nn.init.normal_(E.head.weight, std=0.1)
    path = save_encoder(E, tmp_path / "e.safetensors", G, {"note": "test"})
    loaded = load_encoder(path, G)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert loaded.width == 16 and torch.equal(loaded(x), E.eval()(x))

    other_arch = dataclasses.replace(tiny_arch, style_dim=16)
    with pytest.raises(CheckpointError, match="encoder for a generator"):
        load_encoder(path, Generator(arch=other_arch))
    torch.manual_seed(1)
    with pytest.warns(UserWarning, match="other generator weights"):
        load_encoder(path, Generator(arch=tiny_arch))
    with pytest.raises(CheckpointError, match="not an anycost encoder"):
        load_encoder(save_generator(G, tmp_path / "g.safetensors"), G)
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="this encoder is for"):
        E.encode(Generator(arch=other_arch), x)

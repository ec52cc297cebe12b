"""`anycost.load_generator` / `save_generator`: one pair of calls for every model family."""

import pytest
import torch

import anycost
from anycost.fileio import CheckpointError
from anycost.models.i2i import I2IArch, I2IGenerator
from anycost.models.slimgan import SlimArch, build_generator
from anycost.models.stylegan2 import Generator


def _families(tiny_arch):
    torch.manual_seed(0)
    slim = build_generator(SlimArch.resnet32(ngf=16))
    i2i = I2IGenerator(I2IArch.resnet(ngf=8, n_blocks=2, image_size=16, step=4))
    return {"stylegan2": Generator(arch=tiny_arch), "slimgan": slim.eval(), "i2i": i2i.eval()}


def _run(G):
    if isinstance(G, Generator):
        return G(G.seed_w([0]), noise="const")
    if isinstance(G, I2IGenerator):
        return G(torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16))
    return G(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0)), width=0.5)


def test_every_family_round_trips_through_the_generic_calls(tmp_path, tiny_arch):
    for name, G in _families(tiny_arch).items():
        path = anycost.save_generator(G, tmp_path / f"{name}.safetensors", {"note": name})
        loaded = anycost.load_generator(path)
        assert type(loaded) is type(G), name
        with torch.no_grad():
            torch.testing.assert_close(_run(loaded), _run(G.eval()), rtol=0, atol=1e-6, msg=name)


def test_compressed_generators_round_trip_and_run_as_stylegan2_commands(tmp_path, tiny_generator, capsys):
    """The compression package registers its format: the generic calls and the StyleGAN2 commands read it."""
    from anycost.cli import main
    from anycost.compression import CompressedGenerator, kmeans_quantize

    Gk = kmeans_quantize(tiny_generator, bits=4)
    path = anycost.save_generator(Gk, tmp_path / "k4.safetensors")
    assert isinstance(anycost.load_generator(path), CompressedGenerator)
    assert main(["generate", "-c", str(path), "-o", str(tmp_path / "x.png")]) == 0
    slim = anycost.save_generator(build_generator(SlimArch.resnet32(ngf=16)), tmp_path / "slim.safetensors")
    assert main(["generate", "-c", str(slim), "-o", str(tmp_path / "y.png")]) == 1
    assert "holds a ResNetGenerator; this command runs StyleGAN2" in capsys.readouterr().err


def test_unknown_files_and_classes_are_refused(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(1)}, other, metadata={"format": "someone-else"})
    with pytest.raises(CheckpointError, match="not an anycost generator file .*someone-else.*reads"):
        anycost.load_generator(other)
    with pytest.raises(TypeError, match="no file format for a Linear"):
        anycost.save_generator(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")
    with pytest.raises(FileNotFoundError):
        anycost.load_generator(tmp_path / "missing.safetensors")

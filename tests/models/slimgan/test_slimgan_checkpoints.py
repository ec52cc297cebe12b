"""Saving and loading slimmable generators: the round trip keeps every width's output, the metadata names the
family, and every bad file is a one-line CheckpointError."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from anycost.fileio import CheckpointError
from anycost.models.slimgan import SlimArch, build_generator, load_generator, read_generator, save_generator
from anycost.models.slimgan.checkpoints import FORMAT

ARCHS = [SlimArch.resnet32(16, z_dim=8, num_classes=10), SlimArch.dcgan32(32, z_dim=8, num_classes=10,
                                                                          cbn="switchable"),
         SlimArch.resnet32(16, z_dim=8, widths=(0.5, 1.0))]


def trained(arch: SlimArch):
    """A generator whose BN statistics differ per width (a few training-mode calls), in eval mode."""
    torch.manual_seed(0)
    G = build_generator(arch).train()
    y = torch.arange(4) % arch.num_classes if arch.conditional else None
    for width in arch.widths:
        G(torch.randn(4, arch.z_dim), y, width=width)
    return G.eval()


@pytest.mark.parametrize("arch", ARCHS, ids=["resnet-scbn", "dcgan-xcbn", "resnet-two-widths"])
def test_round_trip_keeps_every_width(arch, tmp_path):
    G = trained(arch)
    path = save_generator(G, tmp_path / "g.safetensors", metadata={"run": "test"})
    H, info = read_generator(path)
    assert H.arch == G.arch and type(H) is type(G) and not H.training and info == {"run": "test"}
    z = torch.randn(3, arch.z_dim)
    y = torch.tensor([0, 4, 9]) if arch.conditional else None
    with torch.no_grad():
        for width in arch.widths:
            assert torch.equal(H(z, y, width=width), G(z, y, width=width))
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]  # no temporary file left


def test_metadata_names_the_family_and_the_arch(tmp_path):
    G = trained(ARCHS[0])
    path = save_generator(G, tmp_path / "g.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["family"] == "slimgan" and meta["format"] == FORMAT and meta["format_version"] == "1"
    assert SlimArch.from_dict(json.loads(meta["arch"])) == G.arch
    assert not any(k.endswith("num_batches_tracked") for k in keys)
    assert load_generator(path).blocks[0].b1.stats[0].num_batches_tracked == 0


def rewrite(src, dst, drop=(), meta_update=None):
    with safe_open(str(src), framework="pt") as f:
        meta = {**f.metadata(), **(meta_update or {})}
        tensors = {k: f.get_tensor(k) for k in f.keys() if k not in drop}
    save_file(tensors, str(dst), metadata=meta)
    return dst


@pytest.fixture
def saved(tmp_path):
    return save_generator(trained(ARCHS[0]), tmp_path / "g.safetensors")


def test_another_familys_checkpoint_is_refused(tmp_path):
    from anycost.models.stylegan2 import Generator, GeneratorArch, save_generator

    path = save_generator(Generator(arch=GeneratorArch(8, 0.0625, 16, 8, 1)), tmp_path / "sg2.safetensors")
    with pytest.raises(CheckpointError, match=r"not an anycost SlimGAN generator file \(format='anycost-generator'\)"):
        load_generator(path)


@pytest.mark.parametrize("change, message", [
    (dict(meta_update={"family": "stylegan2"}), "model family 'stylegan2', expected 'slimgan'"),
    (dict(meta_update={"format_version": "9"}), "unsupported SlimGAN generator format version '9'"),
    (dict(meta_update={"arch": "{"}), "bad architecture metadata"),
    (dict(meta_update={"arch": json.dumps(ARCHS[2].to_dict())}), "unexpected key|missing key|has shape"),
    (dict(drop=("l1.weight",)), "missing key 'l1.weight'"),
])
def test_bad_files_are_one_line_errors(saved, tmp_path, change, message):
    bad = rewrite(saved, tmp_path / "bad.safetensors", **change)
    with pytest.raises(CheckpointError, match=message) as info:
        load_generator(bad)
    assert "\n" not in str(info.value)


def test_truncated_and_missing_files(saved, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(cut)
    with pytest.raises(FileNotFoundError, match="no SlimGAN generator at"):
        load_generator(tmp_path / "absent.safetensors")

"""Loading and saving: both formats, architecture inference, and every kind of bad file."""

import pickle
import tempfile
from pathlib import Path

import pytest
import torch

from anycost import CheckpointError, GeneratorArch, export_official, load_generator, save_generator
from anycost.models.stylegan2.checkpoints import generator_from_official_state, infer_arch, read_metadata
from anycost.models.stylegan2.official import random_official_state_dict

TINY = dict(channel_multiplier=0.125, channel_max=64, style_dim=32, n_mlp=2)


@pytest.fixture
def official_file(tmp_path):
    sd = random_official_state_dict(32, seed=4, **TINY)
    path = tmp_path / "official.pt"
    torch.save({"g_ema": sd, "d": {"x": torch.zeros(1)}, "args": {"size": 32}}, path)
    return path, sd


def _out(G, config=None):
    w = torch.randn(2, G.arch.style_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return G(w, config=config, noise="const")


def test_official_file_loads_with_inferred_arch(official_file):
    path, sd = official_file
    G = load_generator(path)
    assert G.arch.resolution == 32 and G.arch.style_dim == 32 and G.arch.n_mlp == 2
    assert G.arch.channel_max == 64 and G.arch.channel_multiplier == 0.125
    assert not G.training
    torch.testing.assert_close(G.w_avg, G.mean_w())
    bare = path.with_name("bare.pt")
    torch.save(sd, bare)  # a bare state dict is accepted too
    torch.testing.assert_close(_out(load_generator(bare)), _out(G))


def test_config_f_arch_is_inferred_from_shapes():
    from anycost.models.stylegan2.checkpoints import _empty_generator

    state = _empty_generator(GeneratorArch(1024)).state_dict()
    state.pop("w_avg")
    assert infer_arch(state) == GeneratorArch(1024)


def test_round_trips_preserve_outputs(tmp_path, official_file):
    G = load_generator(official_file[0])
    save_generator(G, tmp_path / "g.safetensors", {"trained_on": "nothing"})
    G2 = load_generator(tmp_path / "g.safetensors")
    assert G2.arch == G.arch
    torch.testing.assert_close(G2.w_avg, G.w_avg)
    assert read_metadata(tmp_path / "g.safetensors") == {"trained_on": "nothing"}
    export_official(G2, tmp_path / "back.pt")
    G3 = load_generator(tmp_path / "back.pt")
    config = G.subnet(ratio=0.25)
    for other in (G2, G3):
        torch.testing.assert_close(_out(other, config), _out(G, config), rtol=0, atol=0)
    back = torch.load(tmp_path / "back.pt", weights_only=True)["g_ema"]
    assert set(back) == set(official_file[1])


def _save_state(tmp_path, state, name="bad.pt"):
    path = tmp_path / name
    torch.save({"g_ema": state}, path)
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.pop("convs.3.conv.weight"), "missing key 'convs.3.conv.weight'"),
    (lambda s: s.__setitem__("convs.3.noise.weight", torch.zeros(2)),
     r"'convs.3.noise.weight' has shape \(2,\), expected \(1,\)"),
    (lambda s: s.__setitem__("extra.weight", torch.zeros(1)), "unexpected key 'extra.weight'"),
    (lambda s: s.__setitem__("to_rgb1.bias", torch.zeros(1, 3, 1, 1, dtype=torch.int32)), "dtype torch.int32"),
    (lambda s: s["style.1.bias"].__setitem__(0, float("nan")), "'style.1.bias' holds NaN"),
    (lambda s: s.__setitem__("convs.0.conv.blur.kernel", torch.ones(4, 4)), "not the \\[1,3,3,1\\] FIR kernel"),
    (lambda s: s.__setitem__("convs.2.conv.weight", torch.zeros(1, 48, 64, 3, 3)), "non-standard channel layout"),
    (lambda s: s.pop("style.1.weight"), "not a StyleGAN2 generator state dict"),
])
def test_mismatched_official_state_is_refused_naming_the_key(tmp_path, official_file, edit, message):
    state = {k: v.clone() for k, v in official_file[1].items()}
    edit(state)
    with pytest.raises(CheckpointError, match=message):
        load_generator(_save_state(tmp_path, state))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_corrupt_truncated_and_unsafe_files(tmp_path, official_file):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="not a torch checkpoint file, or a corrupt one"):
        load_generator(junk)
    data = official_file[0].read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a torch checkpoint file, or a corrupt"):
        load_generator(cut)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:  # a pickle that would run code if unpickled without weights_only
        pickle.dump({"g_ema": _Exploit()}, f)
    with pytest.raises(CheckpointError, match="not a torch checkpoint file|refused"):
        load_generator(evil)
    assert not EXPLOIT_TARGET.exists()
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_generator(tmp_path / "list.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_generator(tmp_path / "missing.safetensors")


class _Custom:
    """A class of the test module: torch.save pickles it by reference (a GLOBAL opcode)."""


def test_unreadable_torch_files_fail_with_one_line(tmp_path):
    """A pickled custom class is refused without torch's advice to pass weights_only=False; a text file renamed
    .pt says it is not a torch file (torch alone says "KeyError: 101")."""
    custom = tmp_path / "custom.pt"
    torch.save({"g_ema": {"style.1.weight": _Custom()}}, custom)
    text = tmp_path / "notes.pt"
    text.write_text("hello, this is text\n")
    expected = {custom: "refused: this checkpoint pickles a Python object .*_Custom", text: "not a torch checkpoint"}
    for path, message in expected.items():
        with pytest.raises(CheckpointError, match=message) as err:
            load_generator(path)
        assert "\n" not in str(err.value) and "weights_only=False" not in str(err.value)


EXPLOIT_TARGET = Path(tempfile.gettempdir()) / "anycost-test-pwned"


class _Exploit:
    def __reduce__(self):
        return (open, (str(EXPLOIT_TARGET), "w"))


def test_corrupt_and_foreign_safetensors(tmp_path, tiny_generator):
    from safetensors.torch import save_file

    path = save_generator(tiny_generator, tmp_path / "g.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(cut)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not an anycost generator file"):
        load_generator(foreign)
    state = dict(tiny_generator.state_dict())
    state["conv1.conv.weight"] = torch.zeros(1, 64, 64, 3, 1)
    bad = tmp_path / "bad.safetensors"
    meta = {"format": "anycost-generator", "format_version": "1",
            "arch": '{"resolution": 32, "channel_multiplier": 0.125, "channel_max": 64, "style_dim": 32, "n_mlp": 2,'
                    ' "lr_mlp": 0.01}'}
    save_file({k: v.contiguous() for k, v in state.items()}, bad, metadata=meta)
    with pytest.raises(CheckpointError, match=r"'conv1.conv.weight' has shape \(1, 64, 64, 3, 1\)"):
        load_generator(bad)


def test_failed_save_keeps_the_previous_file(tmp_path, tiny_generator, monkeypatch):
    path = save_generator(tiny_generator, tmp_path / "g.safetensors")
    before = path.read_bytes()

    def boom(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_generator(tiny_generator, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]


def test_generator_from_state_rejects_non_tensors():
    state = random_official_state_dict(16, seed=1, **TINY)
    state["conv1.noise.weight"] = 0.5
    with pytest.raises(CheckpointError, match="is a float, not a tensor"):
        generator_from_official_state(state)

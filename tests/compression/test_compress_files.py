"""The compressed-generator file: exact round trips, really smaller files, refused broken files."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from anycost import CheckpointError, save_generator
from anycost.compression import FORMAT, int8, kmeans_quantize, load_generator, prune, prune_channels, quantize_int8
from anycost.compression import save_generator as save_compressed
from anycost.compression.generator import compressible_keys


def _same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_pruned_file_round_trip_keeps_the_zeros_and_shrinks(tiny_generator, tmp_path):
    Gp = prune(tiny_generator, 0.5, "layer")
    path = save_compressed(Gp, tmp_path / "p.safetensors")
    loaded = load_generator(path)
    _same_state(loaded.state_dict(), Gp.state_dict())
    assert loaded.steps == Gp.steps and loaded.encodings == Gp.encodings and loaded.arch == Gp.arch
    for key in compressible_keys(tiny_generator):
        assert torch.equal(loaded.state_dict()[key] == 0, Gp.state_dict()[key] == 0)
    dense = save_generator(tiny_generator, tmp_path / "dense.safetensors").stat().st_size
    # The conv weights are most of this model: 1/8 byte of mask + 4 bytes for half the weights, instead of 4.
    assert path.stat().st_size < 0.6 * dense


def test_pruning_all_weights_shrinks_the_bundled_model_file_with_the_sparsity(tmp_path):
    import anycost

    G, _ = anycost.default_generator()
    Gp = prune(G, 0.5, "global", "all")
    path = save_compressed(Gp, tmp_path / "p.safetensors")
    loaded = load_generator(path)
    _same_state(loaded.state_dict(), Gp.state_dict())
    dense = save_generator(G, tmp_path / "dense.safetensors").stat().st_size
    # Its 3x3 convs are 58% of the file: pruning only those leaves 0.73x of it; every weight matrix, 0.54x.
    assert path.stat().st_size < 0.6 * dense
    assert save_compressed(prune(G, 0.5), tmp_path / "convs.safetensors").stat().st_size > 0.7 * dense


@pytest.mark.parametrize("bits", [1, 3, 8])
def test_kmeans_file_round_trip_is_exact(tiny_generator, tmp_path, bits):
    Gk = kmeans_quantize(tiny_generator, bits)
    path = save_compressed(Gk, tmp_path / "k.safetensors")
    _same_state(load_generator(path).state_dict(), Gk.state_dict())
    if bits == 3:
        stored = load_file(path)
        key = compressible_keys(tiny_generator)[0]
        assert stored[f"{key}:indices"].numel() == (Gk.state_dict()[key].numel() * 3 + 7) // 8
        assert stored[f"{key}:codebook"].numel() <= 8


def test_channel_pruned_file_round_trip(tiny_generator, tmp_path):
    Gc = prune(prune_channels(tiny_generator, 0.5), 0.3)
    loaded = load_generator(save_compressed(Gc, tmp_path / "c.safetensors"))
    assert loaded.arch == Gc.arch and [s["method"] for s in loaded.steps] == ["channels", "prune"]
    _same_state(loaded.state_dict(), Gc.state_dict())


def _rewrite(path, drop=None, change=None):
    """The file at `path` again, without tensor `drop` / with tensors in `change` replaced."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = {k: v for k, v in load_file(path).items() if k != drop}
    tensors.update(change or {})
    save_file(tensors, path, metadata=meta)


def test_a_missing_codebook_or_a_short_mask_is_refused_naming_the_weight(tiny_generator, tmp_path):
    key = compressible_keys(tiny_generator)[1]
    path = save_compressed(kmeans_quantize(tiny_generator, 2), tmp_path / "k.safetensors")
    _rewrite(path, drop=f"{key}:codebook")
    with pytest.raises(CheckpointError, match=f"its codebook \\({key}:codebook\\) is missing"):
        load_generator(path)
    path = save_compressed(prune(tiny_generator, 0.5), tmp_path / "p.safetensors")
    _rewrite(path, change={f"{key}:mask": torch.zeros(3, dtype=torch.uint8)})
    with pytest.raises(CheckpointError, match=f"{key!r}: expected .* packed bytes"):
        load_generator(path)


def test_int8_scales_and_smoothing_factors_of_the_wrong_length_are_refused(tiny_generator, tmp_path):
    w = tiny_generator.mapping(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    Gq = quantize_int8(tiny_generator, w)
    key = compressible_keys(tiny_generator)[2]
    path = save_compressed(Gq, tmp_path / "q.safetensors")
    stored = load_file(path)
    for part, bad, message in [("scale", stored[f"{key}:scale"][:-1], "int8 weights and .* scales"),
                               ("smooth", stored[f"{key}:smooth"][:-1], "smoothing factors must be"),
                               ("smooth", -stored[f"{key}:smooth"], "smoothing factors must be")]:
        broken = tmp_path / f"{part}.safetensors"
        broken.write_bytes(path.read_bytes())
        _rewrite(broken, change={f"{key}:{part}": bad.contiguous()})
        with pytest.raises(CheckpointError, match=f"{key!r}: .*{message}"):
            load_generator(broken)
    # A file from before the smoothing factors were stored: factors of 1 (W = q * scale).
    _rewrite(path, drop=f"{key}:smooth")
    old, name = load_generator(path), key.removesuffix(".conv.weight")
    assert torch.equal(old.get_submodule(name).smooth, torch.ones(Gq.state_dict()[key].shape[2]))
    q, scales = int8.quantize_weight(Gq.state_dict()[key], Gq.get_submodule(name).smooth)
    assert torch.equal(old.state_dict()[key], q.float() * scales.reshape(1, -1, 1, 1, 1))


def test_kmeans_run_int8_needs_its_smoothing_factors_and_a_valid_scale(tiny_generator, tmp_path):
    w = tiny_generator.mapping(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)))
    key = compressible_keys(tiny_generator)[2]
    path = save_compressed(quantize_int8(kmeans_quantize(tiny_generator, 4), w), tmp_path / "kq.safetensors")
    missing = tmp_path / "missing.safetensors"
    missing.write_bytes(path.read_bytes())
    _rewrite(missing, drop=f"{key}:smooth")  # unlike an old int8 file, nothing to fall back on
    with pytest.raises(CheckpointError, match=f"its smooth \\({key}:smooth\\) is missing"):
        load_generator(missing)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    encodings = json.loads(meta["encodings"])
    encodings[key]["int8"]["act_scale"] = -1.0
    save_file(load_file(path), path, metadata={**meta, "encodings": json.dumps(encodings)})
    with pytest.raises(CheckpointError, match=f"{key!r}: activation scale must be a positive number or null"):
        load_generator(path)


def test_a_plain_generator_file_is_not_a_compressed_one(tiny_generator, tmp_path):
    path = save_generator(tiny_generator, tmp_path / "g.safetensors")
    with pytest.raises(CheckpointError, match="not an anycost compressed generator file"):
        load_generator(path)
    with pytest.raises(TypeError, match="expected a CompressedGenerator"):
        save_compressed(tiny_generator, tmp_path / "x.safetensors")


def test_the_file_names_its_format_and_steps(tiny_generator, tmp_path):
    from safetensors import safe_open

    path = save_compressed(prune(tiny_generator, 0.2), tmp_path / "p.safetensors", {"source": "test"})
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT and json.loads(meta["info"]) == {"source": "test"}
    assert json.loads(meta["steps"]) == [{"method": "prune", "sparsity": 0.2, "scope": "global", "weights": "convs"}]

import numpy as np
import pytest
import torch

from anycost.editing import DirectionsError, EditDirections


def make(layers=None):
    v = torch.tensor([[3.0, 0, 0, 4.0], [0, 2.0, 0, 0]])
    return EditDirections(("smile", "tone"), v, layers, "test")


def test_vectors_are_normalised_and_named():
    d = make()
    torch.testing.assert_close(d.vectors.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(d["smile"], torch.tensor([0.6, 0, 0, 0.8]))
    assert len(d) == 2 and d.style_dim == 4


def test_apply_w_and_w_plus():
    d = make()
    w = torch.zeros(2, 4)
    out = d.apply(w, {"smile": 2.0, "tone": -1.0})
    torch.testing.assert_close(out, torch.tensor([[1.2, -1.0, 0, 1.6]] * 2))
    assert w.abs().sum() == 0, "apply must not edit its input in place"
    wp = torch.zeros(1, 3, 4)
    torch.testing.assert_close(d.apply(wp, {"tone": 1.0})[0, :, 1], torch.ones(3))


def test_layer_range_edits_only_those_styles():
    d = make(layers=[(1, 3), None])
    out = d.apply(torch.zeros(1, 4), {"smile": 1.0}, n_styles=5)
    assert out.shape == (1, 5, 4)
    moved = out.abs().sum(dim=2)[0]
    assert moved.tolist() == [0, pytest.approx(1.4), pytest.approx(1.4), 0, 0]
    with pytest.raises(DirectionsError, match="needs W\\+"):
        d.apply(torch.zeros(1, 4), {"smile": 1.0})
    with pytest.raises(DirectionsError, match="has 2"):
        d.apply(torch.zeros(1, 2, 4), {"smile": 1.0})


def test_bad_inputs():
    d = make()
    with pytest.raises(KeyError, match="known: smile, tone"):
        d.apply(torch.zeros(1, 4), {"age": 1.0})
    with pytest.raises(DirectionsError, match="W \\[N, 4\\]"):
        d.apply(torch.zeros(1, 5), {"smile": 1.0})
    with pytest.raises(DirectionsError, match="finite"):
        d.apply(torch.zeros(1, 4), {"smile": float("nan")})
    with pytest.raises(DirectionsError, match="distinct"):
        EditDirections(("a", "a"), torch.ones(2, 4))
    with pytest.raises(DirectionsError, match="non-zero"):
        EditDirections(("a",), torch.zeros(1, 4))
    with pytest.raises(DirectionsError, match="float tensor"):
        EditDirections(("a",), torch.ones(2, 4))


def test_save_load_round_trip_and_refusals(tmp_path):
    d = make(layers=[(0, 2), None])
    path = d.save(tmp_path / "dirs.npz")
    back = EditDirections.load(path, style_dim=4)
    assert back.names == d.names and back.layers == d.layers and back.source == "test"
    torch.testing.assert_close(back.vectors, d.vectors)
    assert back.select(["tone"]).names == ("tone",)
    with pytest.raises(DirectionsError, match="style_dim 4"):
        EditDirections.load(path, style_dim=8)
    np.savez(tmp_path / "other.npz", x=np.ones(3))
    with pytest.raises(DirectionsError, match="not an anycost directions file"):
        EditDirections.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DirectionsError, match="not a readable"):
        EditDirections.load(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        EditDirections.load(tmp_path / "missing.npz")

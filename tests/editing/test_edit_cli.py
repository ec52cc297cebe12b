"""`anycost directions` and `anycost edit`, run in-process on a tiny saved generator."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from anycost import save_generator
from anycost.cli import main
from anycost.editing import EditDirections
from anycost.editing.fit import orthogonalize, sample_latents
from anycost.images import to_uint8
from anycost.metrics.attributes import AttributeClassifier
from anycost.models.stylegan2.checkpoints import load_generator

CELL = 128  # grid cell size for a 32 px model (image_grid size = max(resolution, 128))


@pytest.fixture
def checkpoint(tmp_path, tiny_generator):
    return str(save_generator(tiny_generator, tmp_path / "tiny.safetensors"))


@pytest.fixture
def classifier_file(tmp_path, tiny_generator):
    """A random-weight classifier whose 'smiling' head is centred on the tiny generator's outputs (both values
    occur), saved as a file."""
    torch.manual_seed(0)
    c = AttributeClassifier({"smiling": ("no", "yes"), "tone": ("a", "b", "c")}, input_size=8, width=4).eval()
    w, _ = sample_latents(tiny_generator, 64, seed=1)
    with torch.no_grad():
        logits = c(tiny_generator(w, noise="const"))["smiling"]
        c.heads["smiling"].bias[1] -= (logits[:, 1] - logits[:, 0]).median()
    return str(c.save(tmp_path / "classifier.safetensors"))


@pytest.fixture
def directions_file(tmp_path):
    """Two non-orthogonal directions for the tiny model (style_dim 32)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 32, generator=g)
    return str(EditDirections(("a", "b"), torch.stack([a + b, b])).save(tmp_path / "ab.npz"))


def cell(path, row, col, size=CELL, label=14, pad=2, model_res=32):
    """The pixels of grid cell (row, col), downsampled back to the model's resolution (cells are nearest-upsampled)."""
    grid = np.asarray(Image.open(path).convert("RGB"))
    x, y = pad + col * (size + pad), pad + row * (size + label + pad)
    return grid[y: y + size: size // model_res, x: x + size: size // model_res]


def render(checkpoint, w):
    G = load_generator(checkpoint)
    with torch.no_grad():
        return to_uint8(G(w, noise="const"))[0]


def assert_same_render(actual, expected):
    """Two uint8 renders of the same latent agree within one level, not bit for bit: the float sums of a render are
    ordered by the batch size, the thread count and the CPU's vector width (AVX-512 / AMX kernels), so a value on a
    rounding boundary can land one level apart. Renders of different latents differ by far more (`assert_differs`
    checks that for the images a test tells apart)."""
    diff = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
    assert diff.max() <= 1, f"renders differ by up to {diff.max()} levels at {int((diff > 1).sum())} values"


def assert_differs(a, b):
    """`a` and `b` differ by more than the tolerance of `assert_same_render`: a test comparing with one of them
    could tell them apart."""
    assert np.abs(a.astype(np.int16) - b.astype(np.int16)).max() > 1


def test_directions_fits_checks_and_reports_every_boundary(tmp_path, checkpoint, classifier_file, capsys):
    out = tmp_path / "dirs.npz"
    assert main(["directions", "-c", checkpoint, "--classifier", classifier_file, "--n", "200", "--pca", "3",
                 "--batch", "50", "--check-n", "40", "--no-progress", "--out", str(out)]) == 0
    dirs = EditDirections.load(out, style_dim=32)
    assert dirs.names[-3:] == ("pca0", "pca1", "pca2")
    assert dirs.source.startswith("interfacegan:classifier + pca (n=200, seed=0)")
    assert dirs.source.endswith("checked on 40 held-out latents (seed 1)")
    printed = capsys.readouterr().out
    assert "held-out check: +2 std on 40 latents of seed 1" in printed and "| pca0 | pca |" in printed
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["settings"]["model"] == f"checkpoint {checkpoint}" and report["settings"]["check"]["n"] == 40
    kept = {d["name"]: d for d in report["directions"]}
    assert set(kept) == set(dirs.names)
    fitted = ["smiling"] + [f"tone:{v}" for v in "abc"]
    for name in fitted:  # the random classifier decides which pass: each is kept, dropped or skipped, with a reason
        if name in kept:
            assert kept[name]["check"]["passed"] is True and f"| {name} |" in printed
        else:
            reason = report["dropped"].get(name) or report["skipped"][name]
            assert reason and f"| {name} | dropped: {reason}" in printed or f"| {name} | skipped: " in printed
    assert all(kept[f"pca{i}"]["check"]["passed"] is None for i in range(3))


def test_directions_pca_only(tmp_path, checkpoint):
    out = tmp_path / "pca.npz"
    assert main(["directions", "-c", checkpoint, "--classifier", "none", "--n", "50", "--pca", "2",
                 "--no-progress", "-o", str(out)]) == 0
    assert EditDirections.load(out).names == ("pca0", "pca1")


def test_edit_shows_the_unedited_render_then_the_edited_preview_and_full(tmp_path, checkpoint, directions_file,
                                                                         capsys):
    out = tmp_path / "edit.png"
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--seed", "4", "--edit", "a=2", "--edit", "b=-1",
                 "--preview-resolution", "16", "--preview-ratio", "0.25", "-o", str(out)]) == 0
    assert Image.open(out).size == (3 * (CELL + 2) + 2, CELL + 14 + 4), "one row: before, after preview, after full"
    G = load_generator(checkpoint)
    dirs = EditDirections.load(directions_file)
    w = G.seed_w([4])
    w_edit = dirs.apply(w, {"a": 2.0, "b": -1.0})
    before, after = render(checkpoint, w), render(checkpoint, w_edit)
    assert_differs(before, after)
    assert_same_render(cell(out, 0, 0), before)
    assert_same_render(cell(out, 0, 2), after)
    with torch.no_grad():
        preview = to_uint8(G(w_edit, config=G.subnet(16, 0.25), noise="const"))[0].repeat(2, 0).repeat(2, 1)
    assert_differs(preview, after)
    assert_same_render(cell(out, 0, 1), preview)
    printed = capsys.readouterr().out
    assert "a=2, b=-1; preview (16 px, ratio 0.25)" in printed and "full (32 px, full)" in printed
    assert "columns: before (unedited full), after (preview), after (full)" in printed

    plain = tmp_path / "plain.png"
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--seed", "4", "-o", str(plain)]) == 0
    assert_same_render(cell(plain, 0, 2), before)
    assert_same_render(cell(plain, 0, 0), before)


def test_the_grid_labels_before_and_after(tmp_path, checkpoint, directions_file, monkeypatch):
    import anycost.images

    seen = {}
    grid = anycost.images.image_grid

    def spy(rows, size, labels=None, **kw):
        seen["rows"], seen["labels"] = [r.shape[0] for r in rows], labels
        return grid(rows, size, labels, **kw)

    monkeypatch.setattr(anycost.images, "image_grid", spy)
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--seed", "4", "--edit", "a=1",
                 "--preview-resolution", "16", "-o", str(tmp_path / "e.png")]) == 0
    assert seen["rows"] == [3]
    before, preview, full = seen["labels"][0]
    assert before == "before: full" and preview.startswith("after: 16px x0.25 ") and full.startswith("after: full ")
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--seed", "4", "--sweep", "a",
                 "--strengths=-1,0,1", "-o", str(tmp_path / "s.png")]) == 0
    assert seen["rows"] == [3, 3] and seen["labels"][0][1].startswith("+0 prev"), "--sweep keeps its layout"


def test_keep_makes_the_edit_orthogonal(tmp_path, checkpoint, directions_file):
    out = tmp_path / "keep.png"
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--seed", "1", "--edit", "a=3", "--keep", "b",
                 "-o", str(out)]) == 0
    G = load_generator(checkpoint)
    plain = EditDirections.load(directions_file)
    dirs = orthogonalize(plain, "a", ["b"])
    expected = render(checkpoint, dirs.apply(G.seed_w([1]), {"a": 3.0}))
    assert_differs(expected, render(checkpoint, plain.apply(G.seed_w([1]), {"a": 3.0})))
    assert_same_render(cell(out, 0, 2), expected)


@pytest.mark.parametrize("strengths", [["--strengths=-2,0,2"], ["--strengths", "-2", "0", "2"]])
def test_sweep_grid_has_a_preview_row_and_a_full_row(tmp_path, checkpoint, directions_file, strengths):
    out = tmp_path / "sweep.png"
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--seed", "2", "--sweep", "b", *strengths,
                 "-o", str(out)]) == 0
    assert Image.open(out).size == (3 * (CELL + 2) + 2, 2 * (CELL + 14 + 2) + 2)
    G = load_generator(checkpoint)
    w = G.seed_w([2])
    dirs = EditDirections.load(directions_file)
    # the grid renders the three strengths as one batch, the expected images one at a time: within one level
    expected = [render(checkpoint, dirs.apply(w, {"b": s})) for s in (-2.0, 0.0, 2.0)]
    assert_differs(expected[1], expected[2])
    assert_differs(expected[0], expected[1])
    for col, image in enumerate(expected):
        assert_same_render(cell(out, 1, col), image)
    assert_differs(cell(out, 0, 1), cell(out, 1, 1)), "row 0 is the preview, not the full render"


def test_edit_from_a_latent_file(tmp_path, checkpoint, directions_file):
    G = load_generator(checkpoint)
    w_plus = G.seed_w([5]).expand(G.arch.n_styles, -1).numpy()
    np.save(tmp_path / "w.npy", w_plus)
    out = tmp_path / "from_file.png"
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--latent", str(tmp_path / "w.npy"),
                 "-o", str(out)]) == 0
    expected = render(checkpoint, G.seed_w([5]))
    assert_differs(expected, render(checkpoint, G.seed_w([4])))
    assert_same_render(cell(out, 0, 2), expected)


@pytest.mark.parametrize("args, code, message", [
    (["--edit", "smile=1"], 1, "unknown direction(s) smile; known: a, b"),
    (["--sweep", "c"], 1, "unknown direction(s) c; known: a, b"),
    (["--edit", "smile"], 2, "bad edit 'smile': use NAME=STRENGTH"),
    (["--edit", "a=big"], 2, "bad edit 'a=big'"),
    (["--edit", "a=1", "--keep", "a"], 1, "cannot both edit and keep a"),
    (["--strengths", "1"], 1, "--strengths needs --sweep NAME"),
    (["--sweep", "a", "--strengths", "1,x"], 1, "bad --strengths '1,x'"),
    (["--preview-resolution", "12"], 1, "unknown resolution 12"),
    (["--preview-ratio", "0"], 1, "ratio"),
    (["--list", "--edit", "a=1"], 1, "--list only lists the directions: drop --edit"),
    (["--seed", "1", "--latent", "w.npy"], 2, "not allowed with argument"),
])
def test_bad_edit_arguments(tmp_path, checkpoint, directions_file, capsys, args, code, message):
    argv = ["edit", "-c", checkpoint, "-d", directions_file, "--seed", "0", "-o", str(tmp_path / "x.png"), *args]
    if code == 2:  # argparse rejects it
        with pytest.raises(SystemExit) as err:
            main(argv)
        assert err.value.code == 2
    else:
        assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_missing_or_mismatched_files(tmp_path, checkpoint, directions_file, capsys):
    base = ["edit", "-c", checkpoint, "--seed", "0", "-o", str(tmp_path / "x.png")]
    assert main([*base, "-d", str(tmp_path / "none.npz")]) == 1
    assert "no directions file" in capsys.readouterr().err
    assert main(base) == 1
    assert "--directions is required with --checkpoint" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", np.zeros((3, 32), np.float32))
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--latent", str(tmp_path / "bad.npy")]) == 1
    assert "a latent must be W [32]" in capsys.readouterr().err
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--latent", str(tmp_path / "none.npy")]) == 1
    assert "no latent file" in capsys.readouterr().err
    big = EditDirections(("x",), torch.ones(1, 64)).save(tmp_path / "big.npz")
    assert main([*base, "-d", str(big)]) == 1
    assert "style_dim 64, the model has 32" in capsys.readouterr().err
    assert main(["directions", "-c", checkpoint, "--classifier", str(tmp_path / "none.safetensors"),
                 "-o", str(tmp_path / "d.npz")]) == 1
    assert "no attribute classifier" in capsys.readouterr().err
    assert main(["directions", "-c", checkpoint, "--classifier", "none", "--pca", "0",
                 "-o", str(tmp_path / "d.npz")]) == 1
    assert "nothing to fit" in capsys.readouterr().err


def test_edit_needs_a_latent_unless_it_lists(tmp_path, checkpoint, directions_file, capsys):
    out = tmp_path / "x.png"
    assert main(["edit", "-c", checkpoint, "-d", directions_file, "--edit", "a=1", "-o", str(out)]) == 1
    assert "give the latent to edit: --seed N or --latent FILE.npy (or --list" in capsys.readouterr().err
    assert not out.exists()


def test_list_shows_the_directions_with_their_fit_report(tmp_path, checkpoint, capsys):
    from anycost.editing.fit import DirectionStats, FittedDirections
    from anycost.editing.validate import DirectionCheck

    dirs = EditDirections(("smiling", "pca0"), torch.eye(32)[:2], source="test fit")
    stats = (DirectionStats("smiling", "conditional", 1.25, accuracy=0.875, n_train=40, n_val=16,
                            orthogonal_to=("tone:a", "tone:b")), DirectionStats("pca0", "pca", 3.5, explained=0.2))
    checks = (DirectionCheck("smiling", "smiling:yes", 2.0, 2.5, 100, 0.1234, {"tone": 0.0456}, True, "passed",
                             ("tone:a", "tone:b")),
              DirectionCheck("pca0", None, 2.0, 7.0, 100, None, {"smiling": 0.3, "tone": 0.2}, None, "unsupervised"))
    dropped = {"tone:c": "target moves +0.010 < 0.1"}
    path = FittedDirections(dirs, stats, {}, {"check": {"n": 100, "seed": 1, "sigmas": 2.0, "min_move": 0.1,
                                                        "max_ratio": 0.5}}, checks, dropped).save(tmp_path / "d.npz")
    out = tmp_path / "never.png"
    assert main(["edit", "-c", checkpoint, "-d", str(path), "--list", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not out.exists(), "--list renders nothing"
    assert f"2 directions in {path} (test fit)" in printed
    assert "| smiling | conditional (orthogonal to tone) | 0.875 | 1.250 | smiling:yes | +0.123 | tone 0.046 | " \
           "passed |" in printed
    assert "| pca0 | pca (unsupervised) |  | 3.500 |  |  | smiling 0.300 | unsupervised |" in printed
    assert "check: +2.0 std on 100 held-out latents (seed 1)" in printed
    assert "dropped (not offered): tone:c: target moves +0.010 < 0.1" in printed

    assert main(["edit", "-c", checkpoint, "-d", str(path), "--seed", "1", "--edit", "tone:c=1", "-o", str(out)]) == 1
    assert ("unknown direction(s) tone:c; known: smiling, pca0 (tone:c was dropped by the held-out check: target "
            "moves +0.010 < 0.1)") in capsys.readouterr().err

    bare = EditDirections(("a",), torch.ones(1, 32)).save(tmp_path / "bare.npz")
    assert main(["edit", "-c", checkpoint, "-d", str(bare), "--list"]) == 0
    printed = capsys.readouterr().out
    assert "| a |  |  |  |  |  |  |  |" in printed and "(no fit report beside the directions file" in printed
    bare.with_suffix(".json").write_text("{not json")
    assert main(["edit", "-c", checkpoint, "-d", str(bare), "--list"]) == 1
    assert "bare.json is not a readable fit report" in capsys.readouterr().err


def test_list_the_bundled_directions(capsys):
    from anycost.editing import default_directions

    dirs = default_directions()
    if dirs is None:
        pytest.skip("no bundled directions in this build")
    assert main(["edit", "--list"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(dirs)} directions in " in printed and "emoji64_directions.npz" in printed
    rows = [line for line in printed.splitlines() if line.startswith("| ") and not line.startswith("| direction")]
    assert [row.split(" | ")[0][2:] for row in rows] == list(dirs.names)
    assert "| pca0 | pca (unsupervised) |" in printed


@pytest.mark.parametrize("args, message", [
    (["--check-n", "0"], "need --check-n >= 1"),
    (["--max-ratio", "1.5"], "0 < --max-ratio <= 1; got"),
    (["--min-move", "0"], "--min-move > 0"),
    (["--check-seed", "0"], "the check latents must be held out: use a check seed other than the fit seed 0"),
])
def test_bad_directions_arguments(tmp_path, checkpoint, classifier_file, capsys, args, message):
    out = tmp_path / "d.npz"
    assert main(["directions", "-c", checkpoint, "--classifier", classifier_file, "--n", "20", "--pca", "1",
                 "--no-progress", "-o", str(out), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

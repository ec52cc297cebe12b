import json

import numpy as np
import pytest
import torch

from anycost.editing import DirectionsError, EditDirections
from anycost.editing.fit import (
    boundary_targets,
    fit_boundaries,
    fit_directions,
    orthogonalize,
    pca_directions,
    sample_latents,
)


def unit(v):
    return v / v.norm()


def cosine(a, b):
    return float(unit(a.double()) @ unit(b.double()))


def planted(n=1500, dim=16, seed=0):
    """Anisotropic w (stds 0.5..2 per axis) and a random unit direction d."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n, dim, generator=g) * torch.linspace(0.5, 2, dim)
    return w, unit(torch.randn(dim, generator=g))


def test_boundary_recovers_the_labelling_direction():
    w, d = planted()
    score = 4 * (w @ d)
    p_yes = torch.sigmoid(score)
    tone = torch.stack([torch.sigmoid(-score), torch.full_like(score, 0.5), torch.sigmoid(score)], 1)
    fitted = fit_boundaries(w, {"smiling": torch.stack([1 - p_yes, p_yes], 1), "tone": tone / tone.sum(1, True)},
                            {"smiling": ("no", "yes"), "tone": ("light", "mid", "dark")})
    dirs = fitted.directions
    assert cosine(dirs["smiling"], d) > 0.9, "a two-valued label points towards its second value"
    assert cosine(dirs["tone:dark"], d) > 0.9 and cosine(dirs["tone:light"], -d) > 0.9
    stats = {s.name: s for s in fitted.stats}
    assert stats["smiling"].accuracy > 0.9 and stats["smiling"].n_val > 0 and stats["smiling"].kind == "boundary"
    assert stats["smiling"].std == pytest.approx(float((w @ dirs["smiling"]).std()), rel=1e-4)
    assert "tone:mid" in fitted.skipped and "tone:mid" not in dirs.names, "never the argmax: no boundary"
    assert "tone:mid" in fitted.table() and "| smiling | boundary |" in fitted.table()


def test_held_out_accuracy_exposes_a_label_unrelated_to_w():
    w, _ = planted(n=300, dim=64)  # few samples in many dims: the train part is separable, the held-out one is not
    p = torch.rand(len(w), generator=torch.Generator().manual_seed(5))
    fitted = fit_boundaries(w, {"noise": torch.stack([1 - p, p], 1)}, {"noise": ("a", "b")})
    assert fitted.stats[0].accuracy < 0.7


def test_boundary_targets_naming_and_no_fit_errors():
    assert boundary_targets({"smiling": ("no", "yes"), "gender": ("man", "woman", "neutral")}) == [
        ("smiling", "smiling", 1), ("gender:man", "gender", 0), ("gender:woman", "gender", 1),
        ("gender:neutral", "gender", 2)]
    w, _ = planted(n=100)
    all_no = torch.tensor([[1.0, 0.0]]).expand(100, 2)
    with pytest.raises(ValueError, match="no attribute value has enough"):
        fit_boundaries(w, {"smiling": all_no}, {"smiling": ("no", "yes")})
    with pytest.raises(ValueError, match="no probabilities for label 'hair'"):
        fit_boundaries(w, {"smiling": all_no}, {"hair": ("no", "yes")})


def test_pca_recovers_the_dominant_axis_of_a_planted_distribution():
    g = torch.Generator().manual_seed(1)
    u = unit(torch.randn(24, generator=g))
    w = torch.randn(3000, 24, generator=g) + 5 * torch.randn(3000, 1, generator=g) * u + 3.0
    fitted = pca_directions(w, 3)
    dirs = fitted.directions
    assert dirs.names == ("pca0", "pca1", "pca2") and dirs.source == "pca"
    assert abs(cosine(dirs["pca0"], u)) > 0.99
    top = fitted.stats[0]
    assert top.std == pytest.approx(float(torch.sqrt(torch.tensor(26.0))), rel=0.1)
    assert top.explained > 0.45 and top.std > fitted.stats[1].std >= fitted.stats[2].std
    v = dirs["pca0"]
    assert v[v.abs().argmax()] > 0, "sign convention: largest entry positive"
    with pytest.raises(ValueError, match="k must be in 1..24"):
        pca_directions(w, 25)


def test_orthogonalize_keeps_the_other_projections_fixed():
    a = torch.tensor([1.0, 0, 0, 0])
    b = unit(torch.tensor([0.6, 0.8, 0, 0]))
    c = torch.tensor([0, 0, 1.0, 0])
    dirs = EditDirections(("smile", "gender", "tone"), torch.stack([b, a, c]), source="x")
    cond = orthogonalize(dirs, "smile", ["gender"])
    torch.testing.assert_close(cond["smile"], torch.tensor([0.0, 1.0, 0, 0]))
    torch.testing.assert_close(cond["gender"], a)
    assert cond.names == dirs.names and cond.source == "x"
    w = torch.randn(5, 4)
    moved = cond.apply(w, {"smile": 3.0})
    torch.testing.assert_close(moved @ a, w @ a)
    # a dependent set of constraints is one constraint
    twice = EditDirections(("smile", "g1", "g2"), torch.stack([b, a, -a]))
    torch.testing.assert_close(orthogonalize(twice, "smile", ["g1", "g2"])["smile"], torch.tensor([0.0, 1.0, 0, 0]))
    with pytest.raises(DirectionsError, match="within the span"):
        orthogonalize(EditDirections(("s", "g"), torch.stack([a, -a])), "s", ["g"])
    with pytest.raises(DirectionsError, match="itself"):
        orthogonalize(dirs, "smile", ["smile"])
    with pytest.raises(KeyError, match="known: smile, gender, tone"):
        orthogonalize(dirs, "smile", ["age"])


class Brightness:
    """A stand-in classifier: P(bright) rises with the mean of the image, centred on the median of `reference`."""

    label_values = {"bright": ("no", "yes")}

    def __init__(self, reference):
        self.centre = reference.mean((1, 2, 3)).median()

    def predict(self, images):
        p = torch.sigmoid(40 * (images.mean((1, 2, 3)) - self.centre))
        return {"bright": torch.stack([1 - p, p], 1)}


def test_fit_directions_on_a_generator_gives_a_direction_that_edits_the_attribute(tiny_generator, tmp_path):
    G = tiny_generator
    w, _ = sample_latents(G, 32, seed=9)
    with torch.no_grad():
        classifier = Brightness(G(w, noise="const"))
    fitted = fit_directions(G, classifier, n=400, pca=3, seed=0, batch=100, classifier_name="brightness",
                            check_n=100, baseline=0)
    dirs = fitted.directions
    assert dirs.names == ("bright", "pca0", "pca1", "pca2")
    assert dirs.source == "interfacegan:brightness + pca (n=400, seed=0), checked on 100 held-out latents (seed 1)"
    assert fitted.check_of("bright").passed and not fitted.dropped
    assert fitted.settings["n"] == 400 and len(fitted.stats) == 4
    assert fitted.stats[0].accuracy > 0.8
    s = fitted.stats[0].std
    with torch.no_grad():
        before = classifier.predict(G(w, noise="const"))["bright"][:, 1]
        after = classifier.predict(G(dirs.apply(w, {"bright": 2 * s}), noise="const"))["bright"][:, 1]
    assert (after > before).float().mean() > 0.8

    path = fitted.save(tmp_path / "d.npz")
    loaded = EditDirections.load(path, style_dim=G.arch.style_dim)
    assert loaded.names == dirs.names
    torch.testing.assert_close(loaded.vectors, dirs.vectors)
    report = json.loads(path.with_suffix(".json").read_text())
    assert [d["name"] for d in report["directions"]] == list(dirs.names)
    assert report["directions"][0]["accuracy"] == fitted.stats[0].accuracy
    assert report["directions"][0]["check"]["target_move"] == fitted.check_of("bright").target_move


def test_sample_latents_is_seeded_and_batch_independent(tiny_generator):
    w1, probs = sample_latents(tiny_generator, 10, seed=3, batch=4)
    w2, _ = sample_latents(tiny_generator, 10, seed=3, batch=10)
    assert probs == {} and w1.shape == (10, tiny_generator.arch.style_dim)
    torch.testing.assert_close(w1, w2)
    assert not torch.equal(w1, sample_latents(tiny_generator, 10, seed=4)[0])
    with pytest.raises(ValueError, match="n and batch must be positive"):
        sample_latents(tiny_generator, 0)
    with pytest.raises(ValueError, match="nothing to fit"):
        fit_directions(tiny_generator, None, n=10, pca=0)


def test_bundled_directions_fit_the_bundled_model():
    from anycost import assets
    from anycost.editing.directions import DIRECTIONS_NAME, default_directions
    from anycost.metrics.attributes import AttributeClassifier, default_classifier_path
    from anycost.models.stylegan2 import DEFAULT_ARCH

    dirs = default_directions()
    if dirs is None:
        pytest.skip("no bundled directions in this build")
    assert dirs.style_dim == DEFAULT_ARCH.style_dim and "pca0" in dirs.names
    np.testing.assert_allclose(dirs.vectors.norm(dim=1).numpy(), 1, rtol=1e-5)
    if default_classifier_path() is not None:
        label_values = AttributeClassifier.load(default_classifier_path()).label_values
        targets = {name for name, _, _ in boundary_targets(label_values)}
        assert set(dirs.names) <= targets | {f"pca{i}" for i in range(len(dirs))}
        report = json.loads(assets.path(DIRECTIONS_NAME).with_suffix(".json")
                            .read_text())
        kept = {d["name"]: d for d in report["directions"]}
        assert list(kept) == list(dirs.names)
        for name, d in kept.items():  # every offered attribute edit passed the held-out check
            assert d["check"]["passed"] is (None if d["kind"] == "pca" else True), name
            if name in targets:
                check = d["check"]
                assert check["target_move"] >= report["settings"]["check"]["min_move"]
                assert check["largest_other_move"] <= report["settings"]["check"]["max_ratio"] * check["target_move"]
        assert targets == set(kept) & targets | set(report["dropped"]) | set(report["skipped"]), \
            "every attribute value is offered, dropped or skipped"
        assert all(report["dropped"].values()) and not set(report["dropped"]) & set(kept)

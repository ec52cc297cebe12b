"""The held-out check of edit directions (`anycost.editing.validate`) and the keep / drop / conditional selection
(`anycost.editing.fit.check_and_select`), on cases whose outcome is known."""

import json
from types import SimpleNamespace

import pytest
import torch

from anycost.editing import EditDirections
from anycost.editing.fit import DirectionStats, FittedDirections, check_and_select, fit_directions, sample_latents
from anycost.editing.validate import (
    attribute_moves,
    check_directions,
    checks_table,
    group_names,
    judge,
    random_baseline,
    target_of,
)

LABELS = {"hair": ("none", "white", "blond"), "smiling": ("no", "yes")}


def probs(hair, smiling_yes):
    return {"hair": torch.tensor(hair, dtype=torch.float32),
            "smiling": torch.tensor([[1 - p, p] for p in smiling_yes])}


def test_moves_of_the_target_the_other_labels_and_the_targets_other_values():
    before = probs([[0.8, 0.1, 0.1], [0.6, 0.2, 0.2]], [0.2, 0.4])
    after = probs([[0.4, 0.2, 0.4], [0.2, 0.4, 0.4]], [0.3, 0.3])  # blond +0.25, white +0.15, none -0.4
    target_move, moves = attribute_moves(before, after, ("hair", 2), LABELS)
    assert target_move == pytest.approx(0.25)
    assert moves == pytest.approx({"hair:none": 0.0, "hair:white": 0.15, "smiling": 0.0}, abs=1e-6), \
        "values that lose mass do not count; smiling's mean is unchanged"
    assert judge(target_move, moves) == (False, "hair:white moves 0.150 > 0.5 x target move 0.250")
    # smiling as the target: P(yes) mean 0.3 -> 0.3; hair moves by the total variation of its mean distribution
    target_move, moves = attribute_moves(before, after, ("smiling", 1), LABELS)
    assert target_move == pytest.approx(0.0, abs=1e-6) and moves == pytest.approx({"hair": 0.4})
    assert judge(target_move, moves)[1] == "target moves +0.000 < 0.1 (largest other move: hair 0.400)"
    assert judge(0.3, {"hair": 0.15, "smiling": 0.1}) == (True, "passed"), "exactly half is allowed"
    assert judge(0.3, {"a": 0.2, "b": 0.16})[1] == "a moves 0.200 > 0.5 x target move 0.300 (also b)"
    assert judge(None, {"hair": 0.9}) == (None, "unsupervised: no target attribute to check")
    assert judge(-0.2, {})[0] is False, "a direction that lowers its value fails"


def test_targets_follow_the_boundary_names():
    assert target_of("smiling", LABELS) == ("smiling", 1)
    assert target_of("hair:blond", LABELS) == ("hair", 2)
    assert target_of("hair", LABELS) is None and target_of("hair:red", LABELS) is None
    assert target_of("pca0", LABELS) is None and target_of("smiling:yes", LABELS) == ("smiling", 1)
    assert group_names(["gender:man", "gender:woman", "hair:white"]) == "gender, hair:white"


class LinearG:
    """A stand-in generator whose 'image' is the latent itself ([N, 12] -> [N, 3, 2, 2]): what a direction does to
    the image is known exactly. mapping is the identity, so w ~ N(0, 1)."""

    def __init__(self, dim=12):
        self.w_avg = torch.zeros(dim)
        self.arch = SimpleNamespace(style_dim=dim)

    def mapping(self, z):
        return z

    def __call__(self, w, noise="const", impl="auto", config=None):
        return w.reshape(len(w), 3, 2, 2)


class LinearClassifier:
    """P(label = its second value) = sigmoid(scale * <w, axis>) for each two-valued label; `axes` may be shared."""

    def __init__(self, axes, scale=3.0):
        self.axes = axes
        self.scale = scale
        self.label_values = {name: ("no", "yes") for name in axes}

    def predict(self, images):
        w = images.reshape(len(images), -1)
        out = {}
        for name, axis in self.axes.items():
            p = torch.sigmoid(self.scale * (w @ axis))
            out[name] = torch.stack([1 - p, p], 1)
        return out


def axis(i, dim=12):
    return torch.eye(dim)[i]


def fitted(names, vectors, kinds, w):
    stats = tuple(DirectionStats(n, k, float((w @ (v / v.norm())).std())) for n, v, k in zip(names, vectors, kinds))
    return FittedDirections(EditDirections(tuple(names), torch.stack(vectors), source="test"), stats)


def test_check_keeps_a_clean_direction_and_fails_an_entangled_or_inert_one():
    G, w = LinearG(), torch.randn(400, 12, generator=torch.Generator().manual_seed(0))
    classifier = LinearClassifier({"smiling": axis(0), "beard": axis(1)})
    dirs = EditDirections(("smiling", "beard", "pca0"), torch.stack([axis(0) + axis(1), axis(2), axis(3)]))
    std = {n: float((w @ dirs[n]).std()) for n in dirs.names}
    checks = check_directions(G, dirs, classifier, w, std)
    smiling, beard, pca = checks
    assert smiling.target == "smiling:yes" and smiling.strength == pytest.approx(2 * std["smiling"])
    assert smiling.target_move > 0.1 and smiling.moves["beard"] == pytest.approx(smiling.target_move, rel=0.2)
    assert smiling.passed is False and smiling.reason.startswith("beard moves"), "beard moves as much as smiling"
    assert beard.passed is False and beard.target_move == pytest.approx(0, abs=1e-6), "axis 2 moves nothing"
    assert pca.passed is None and pca.target is None and pca.moves["smiling"] == pytest.approx(0, abs=1e-6)
    clean = check_directions(G, EditDirections(("smiling",), axis(0)[None]), classifier, w, {"smiling": 1.0})[0]
    assert clean.passed is True and clean.moves["beard"] == pytest.approx(0, abs=1e-6)
    table = checks_table(checks)
    assert "| smiling | smiling:yes |" in table and "failed: beard moves" in table and "unsupervised" in table
    assert random_baseline(G, classifier, w, k=4) < smiling.target_move
    with pytest.raises(ValueError, match="no std for direction"):
        check_directions(G, dirs, classifier, w, {"smiling": 1.0})
    with pytest.raises(ValueError, match="max_ratio"):
        check_directions(G, dirs, classifier, w, std, max_ratio=0)


def test_selection_drops_failures_rescues_conditionally_and_keeps_pca(tmp_path):
    G = LinearG()
    w_fit, _ = sample_latents(G, 400, seed=0)
    # smiling's boundary is entangled with beard's: made orthogonal to beard it is the clean axis 0 and passes;
    # "twin" reads the same axis as "mole", so no direction can move one without the other: both are dropped
    classifier = LinearClassifier({"smiling": axis(0), "beard": axis(1), "mole": axis(4), "twin": axis(4)})
    names = ["smiling", "beard", "mole", "twin", "pca0"]
    vectors = [axis(0) + axis(1), axis(1), axis(4), axis(4), axis(7)]
    fit = fitted(names, vectors, ["boundary"] * 4 + ["pca"], w_fit)
    result = check_and_select(G, fit, classifier, w_fit, check_n=300, check_seed=1, baseline=3)
    assert result.directions.names == ("smiling", "beard", "pca0")
    stats = {s.name: s for s in result.stats}
    assert stats["smiling"].kind == "conditional" and stats["smiling"].orthogonal_to == ("beard",)
    assert abs(float(result.directions["smiling"] @ axis(0))) > 0.999
    assert stats["beard"].kind == "boundary" and stats["pca0"].kind == "pca"
    assert set(result.dropped) == {"mole", "twin"}
    assert result.dropped["mole"].startswith("twin moves") and "orthogonal to twin: " not in result.dropped["mole"], \
        "mole within the span of twin: nothing is left to check"
    assert result.check_of("smiling").passed and result.check_of("smiling").orthogonal_to == ("beard",)
    assert [c.name for c in result.checks].count("smiling") == 2, "the plain check and the conditional retry"
    assert result.settings["check"]["seed"] == 1 and result.settings["check"]["random_baseline"]["directions"] == 3

    path = result.save(tmp_path / "d.npz")
    report = json.loads(path.with_suffix(".json").read_text())
    assert [d["name"] for d in report["directions"]] == ["smiling", "beard", "pca0"]
    assert report["directions"][0]["orthogonal_to"] == ["beard"] and report["directions"][0]["check"]["passed"]
    assert report["directions"][2]["check"]["passed"] is None
    assert set(report["dropped"]) == {"mole", "twin"} and "twin moves" in report["dropped"]["mole"]
    assert len(report["checks"]) == len(result.checks)
    table = result.table()
    assert "| smiling | conditional (orthogonal to beard) |" in table and "| twin | dropped: mole moves" in table

    no_retry = check_and_select(G, fit, classifier, w_fit, check_n=300, check_seed=1, conditional=False,
                                baseline=0)
    assert no_retry.directions.names == ("beard", "pca0") and "random_baseline" not in no_retry.settings["check"]
    only_failures = fitted(["mole", "twin"], [axis(4), axis(4)], ["boundary"] * 2, w_fit)
    with pytest.raises(ValueError, match="no direction passed the held-out check.*mole: twin moves"):
        check_and_select(G, only_failures, classifier, w_fit, check_n=100, baseline=0)


class Brightness:
    """P(bright) rises with the mean of the image, centred on the median of `reference`; with `twin`, a second
    label reads the same thing (an attribute no edit can move alone)."""

    def __init__(self, reference, twin=False):
        self.centre = reference.mean((1, 2, 3)).median()
        self.label_values = {"bright": ("no", "yes"), **({"twin": ("no", "yes")} if twin else {})}

    def predict(self, images):
        p = torch.sigmoid(40 * (images.mean((1, 2, 3)) - self.centre))
        return {name: torch.stack([1 - p, p], 1) for name in self.label_values}


@pytest.mark.parametrize("twin", [False, True])
def test_fit_directions_on_a_tiny_generator_keeps_or_drops_by_the_check(tiny_generator, twin):
    G = tiny_generator
    with torch.no_grad():
        classifier = Brightness(G(sample_latents(G, 32, seed=9)[0], noise="const"), twin)
    fitted_dirs = fit_directions(G, classifier, n=300, pca=2, batch=100, check_n=100, baseline=0)
    if twin:
        assert fitted_dirs.directions.names == ("pca0", "pca1")
        assert set(fitted_dirs.dropped) == {"bright", "twin"}
        assert fitted_dirs.dropped["bright"].startswith("twin moves")
    else:
        assert fitted_dirs.directions.names == ("bright", "pca0", "pca1") and not fitted_dirs.dropped
        assert fitted_dirs.check_of("bright").target_move >= 0.1
    assert fitted_dirs.settings["check"]["seed"] == 1 and "held-out latents (seed 1)" in fitted_dirs.directions.source
    with pytest.raises(ValueError, match="must be held out"):
        fit_directions(G, classifier, n=50, pca=0, check_seed=0)

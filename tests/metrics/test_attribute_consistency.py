"""Attribute classifier (training, held-out report, safetensors round trip) and attribute consistency."""

import json

import pytest
import torch

import anycost.data.emoji as emoji_data
from anycost.metrics import AttributeClassifier, AttributeRow, attribute_consistency, train_attribute_classifier
from anycost.metrics.attributes import evaluate_classifier
from anycost.models.stylegan2.checkpoints import save_generator

pytestmark = pytest.mark.usefixtures("one_thread")


COLOURS = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1]])  # red, green, blue


def colour_task(n=240, size=12, seed=0):
    """Images whose dominant colour gives label 0 (3 values) and whose brightness gives label 1 (2 values)."""
    g = torch.Generator().manual_seed(seed)
    hue = torch.randint(0, 3, (n,), generator=g)
    bright = torch.randint(0, 2, (n,), generator=g)
    base = COLOURS[hue] * 0.6 + (bright[:, None].float() - 0.5) * 0.6
    images = base[:, :, None, None] + 0.15 * torch.randn(n, 3, size, size, generator=g)
    return images.clamp(-1, 1), torch.stack([hue, bright], 1)


VALUES = {"colour": ("red", "green", "blue"), "brightness": ("dark", "bright")}


@pytest.fixture(scope="module")
def colour_classifier():
    return train_attribute_classifier(colour_task(), epochs=4, seed=0, label_values=VALUES, input_size=8, width=8,
                                      batch_size=32, lr=1e-2)


def test_learns_a_separable_task(colour_classifier):
    clf = colour_classifier
    assert clf.label_names == ("colour", "brightness") and clf.label_values == VALUES
    held_out = clf.metrics["held_out"]
    assert held_out["colour"]["n"] == 48 and clf.metrics["settings"]["n_train"] == 192
    assert held_out["colour"]["accuracy"] >= 0.95 and held_out["brightness"]["accuracy"] >= 0.95
    images, labels = colour_task(n=60, size=20, seed=1)  # other samples, another size
    assert evaluate_classifier(clf, images, labels)["colour"]["accuracy"] >= 0.95
    probs = clf.predict(images)
    assert probs["colour"].shape == (60, 3) and torch.allclose(probs["brightness"].sum(1), torch.ones(60))
    assert not clf.training


def test_save_load_round_trip(colour_classifier, tmp_path):
    path = colour_classifier.save(tmp_path / "attr.safetensors", metadata={"data": "colours"})
    loaded = AttributeClassifier.load(path)
    assert loaded.label_values == VALUES and loaded.input_size == 8 and loaded.width == 8
    assert loaded.metrics == json.loads(json.dumps(colour_classifier.metrics))
    images, _ = colour_task(n=10, seed=2)
    for name, probs in colour_classifier.predict(images).items():
        assert torch.equal(loaded.predict(images)[name], probs)


def test_load_rejects_other_files(tiny_generator, tmp_path):
    save_generator(tiny_generator, tmp_path / "g.safetensors")
    with pytest.raises(ValueError, match="not an attribute classifier"):
        AttributeClassifier.load(tmp_path / "g.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError):
        AttributeClassifier.load(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError):
        AttributeClassifier.load(tmp_path / "missing.safetensors")


def test_constant_labels_get_no_head():
    images, labels = colour_task(n=40)
    labels = torch.cat([labels, torch.zeros(40, 1, dtype=torch.long)], 1)
    clf = train_attribute_classifier((images, labels), epochs=1, label_values={**VALUES, "face": ("yes", "no")},
                                     input_size=8, width=4)
    assert clf.label_names == ("colour", "brightness") and clf.metrics["skipped_labels"] == ["face"]
    clf = train_attribute_classifier((images, labels[:, 0]), epochs=1, val_fraction=0, input_size=8, width=4)
    assert clf.label_values == {"label0": ("0", "1", "2")} and clf.metrics["held_out"] == {}


def test_bad_training_inputs():
    images, labels = colour_task(n=20)
    with pytest.raises(ValueError, match="label names"):
        train_attribute_classifier((images, labels), label_values={"colour": VALUES["colour"]})
    with pytest.raises(ValueError, match="outside"):
        train_attribute_classifier((images, labels), label_values={"colour": ("r", "g"), "brightness": ("d", "b")})
    with pytest.raises(ValueError, match="single value"):
        train_attribute_classifier((images, torch.zeros(20, 1, dtype=torch.long)))
    with pytest.raises(ValueError, match="labels must be"):
        train_attribute_classifier((images, labels[:5]))
    with pytest.raises(ValueError, match="val_fraction"):
        train_attribute_classifier((images, labels), val_fraction=1.0)
    with pytest.raises(ValueError, match="epochs"):
        train_attribute_classifier((images, labels), epochs=0)
    with pytest.raises(ValueError, match="at least two values"):
        AttributeClassifier({"colour": ("red",)})
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        AttributeClassifier(VALUES).predict(torch.zeros(2, 1, 8, 8))


def test_attribute_consistency(tiny_generator, colour_classifier):
    G = tiny_generator
    configs = [G.full_config, G.subnet(ratio=0.25), G.subnet(resolution=16, ratio=0.5)]
    rows = attribute_consistency(G, configs, colour_classifier, n=6, seed=3, batch=4)
    assert all(isinstance(r, AttributeRow) and r.n == 6 for r in rows)
    assert rows[0].agreement == {"colour": 1.0, "brightness": 1.0} and rows[0].mean == 1.0
    for row in rows[1:]:
        assert all(0 <= v <= 1 and (v * 6).is_integer() for v in row.agreement.values())
        assert row.mean == pytest.approx(sum(row.agreement.values()) / 2)
    assert [r.resolution for r in rows] == [32, 32, 16]
    json.dumps([r.to_dict() for r in rows])
    # the same numbers by hand for the 16 px config against the downsampled full output
    rng = torch.Generator().manual_seed(3)
    agree = torch.zeros(2)
    with torch.no_grad():
        for b in (4, 2):
            z = torch.randn(b, G.arch.style_dim, generator=rng)
            w = G.mapping(z)
            noise = G.make_noise(b, 32, rng)
            full = torch.nn.functional.avg_pool2d(G(w, noise=noise), 2)
            sub = G(w, config=configs[2], noise=noise)
            agree += (colour_classifier.predict_labels(sub) == colour_classifier.predict_labels(full)).sum(0)
    assert list(rows[2].agreement.values()) == pytest.approx((agree / 6).tolist())
    full_ref, = attribute_consistency(G, configs[2:], colour_classifier, n=6, seed=3, batch=4, reference="full")
    assert 0 <= full_ref.mean <= 1


def test_attribute_consistency_bad_inputs(tiny_generator, colour_classifier):
    G = tiny_generator
    with pytest.raises(ValueError, match="at least one"):
        attribute_consistency(G, [], colour_classifier)
    with pytest.raises(ValueError, match="n must be"):
        attribute_consistency(G, [G.full_config], colour_classifier, n=0)
    with pytest.raises(ValueError, match="reference"):
        attribute_consistency(G, [G.full_config], colour_classifier, reference="half")
    with pytest.raises(TypeError, match="AttributeClassifier"):
        attribute_consistency(G, [G.full_config], lambda x: x)


def test_emoji_labels(tmp_path, emoji_font):
    faces = emoji_data.EmojiDataset(16, cache_dir=tmp_path, progress=False)
    clf = train_attribute_classifier(faces, epochs=3, seed=0, input_size=16, width=8, lr=1e-2)
    assert clf.label_names == ("skin_tone", "hair", "gender", "smiling")
    assert clf.metrics["skipped_labels"] == ["person_or_face"]  # every face/people emoji is a person or face
    assert clf.label_values["skin_tone"] == emoji_data.LABEL_VALUES["skin_tone"]
    held_out = clf.metrics["held_out"]["skin_tone"]
    assert held_out["accuracy"] > 2 * held_out["majority_baseline"]  # skin tone is a colour: learnt in 3 epochs


def test_grey_images_give_a_grey_classifier(tmp_path):
    images, labels = colour_task(n=40, size=8)
    grey = images.mean(1, keepdim=True)
    clf = train_attribute_classifier((grey, labels[:, 1]), epochs=1, val_fraction=0, input_size=8, width=4,
                                     flip=False)
    assert clf.channels == 1 and clf.metrics["settings"]["flip"] is False
    assert AttributeClassifier.load(clf.save(tmp_path / "grey.safetensors")).channels == 1
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        clf.predict(images)

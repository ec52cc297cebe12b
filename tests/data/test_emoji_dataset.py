"""EmojiDataset: subset size, label parsing, rendering, cache reuse, errors."""

import sys

import numpy as np
import pytest
import torch

import anycost.data.emoji as emoji_data
from anycost.data import EmojiDataset, base_name, is_head, parse_labels


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("emoji_cache")


@pytest.fixture(scope="module")
def faces32(cache_dir, emoji_font):
    return EmojiDataset(32, cache_dir=cache_dir, progress=False)


@pytest.mark.parametrize("name, expected", [
    (":woman_medium_skin_tone_red_hair:", ("yes", "medium", "red", "woman", "no")),
    ("woman: red hair, medium skin tone", ("yes", "medium", "red", "woman", "no")),
    (":man_bald:", ("yes", "none", "bald", "man", "no")),
    (":person_medium-light_skin_tone_white_hair:", ("yes", "medium-light", "white", "neutral", "no")),
    (":boy_dark_skin_tone:", ("yes", "dark", "none", "man", "no")),
    (":grinning_face_with_smiling_eyes:", ("yes", "none", "none", "unknown", "yes")),
    (":thumbs_up_medium-dark_skin_tone:", ("yes", "medium-dark", "none", "unknown", "no")),
    (":family_man_woman_girl:", ("yes", "none", "none", "unknown", "no")),
    (":rocket:", ("no", "none", "none", "unknown", "no")),
])
def test_parse_labels(name, expected):
    assert tuple(parse_labels(name).values()) == expected


@pytest.mark.parametrize("name, base", [
    (":woman_medium_skin_tone_red_hair:", "woman red hair"), ("woman: red hair, medium skin tone", "woman red hair"),
    (":woman_red_hair:", "woman red hair"), (":grinning_face:", "grinning face"),
    (":kiss_woman_man_light_skin_tone_medium-dark_skin_tone:", "kiss woman man"),
])
def test_base_name_drops_the_skin_tones(name, base):
    assert base_name(name) == base


@pytest.mark.parametrize("name, head", [
    (":grinning_face:", True), (":face_with_tongue:", True), (":man_health_worker_dark_skin_tone:", True),
    (":woman_red_hair:", True), (":person_facepalming:", True), (":old_woman:", True),
    (":cow_face:", False), (":thumbs_up_medium-dark_skin_tone:", False), (":family_man_woman_girl:", False),
    (":man_running:", False), (":couple_with_heart_woman_man:", False), (":person_in_lotus_position:", False),
    (":mermaid:", False), (":rocket:", False),
])
def test_is_head(name, head):
    assert is_head(name) is head


def test_heads_subset_is_the_heads_of_faces_people(faces32, cache_dir, emoji_font):
    heads = EmojiDataset(32, subset="heads", cache_dir=cache_dir, progress=False)
    print(f"heads at 32 px: {len(heads)} emoji")
    assert 0.2 * len(faces32) <= len(heads) <= 0.6 * len(faces32)
    assert set(heads.names) <= set(faces32.names)
    assert all(is_head(n) for n in heads.names)
    assert heads.cache_path != faces32.cache_path


def test_parse_labels_neutral_role_from_sequence():
    assert parse_labels(":farmer:", "\U0001f9d1\u200d\U0001f33e")["gender"] == "neutral"


def test_bogus_font_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install fonts-noto-color-emoji"):
        EmojiDataset(32, font_path=tmp_path / "nope.ttf", cache_dir=tmp_path)


def test_subset_size_and_items(faces32):
    print(f"faces_people at 32 px: {len(faces32)} emoji")  # 2317 with Debian 12's font and emoji 2.16
    assert 1500 <= len(faces32) <= 3500
    image, labels = faces32[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1
    assert labels.shape == (len(EmojiDataset.label_names),) and labels.dtype == torch.int64
    assert (faces32.labels[:, 0] == 1).all()  # every item of faces_people is a person or a face
    tones = {faces32.describe(i)["skin_tone"] for i in range(len(faces32))}
    assert tones == set(EmojiDataset.label_values["skin_tone"])


def test_known_face_renders(faces32, emoji_font):
    i = faces32.names.index("woman_medium_skin_tone_red_hair")
    assert faces32.describe(i) == parse_labels("woman: red hair, medium skin tone")
    pixels = faces32.images[i].astype(np.int32)
    assert (pixels < 250).any(axis=-1).mean() > 0.3  # not blank: most of the square is covered
    assert pixels.std(axis=(0, 1)).max() > 20  # not a flat fallback box
    red, green, blue = (pixels[..., c] for c in range(3))
    assert ((red > 150) & (red > green + 50) & (red > blue + 50)).sum() > 10  # colour: red hair
    renderer = emoji_data.EmojiRenderer(emoji_font, 32)
    assert renderer.render("\U0010fffd") is None  # the fallback glyph is rejected
    assert renderer.render("\U0001f468\u200d\U0001f469\u200d\U0001f33e") is None  # unligated ZWJ: several glyphs


def test_cache_reused(faces32, cache_dir, monkeypatch):
    assert faces32.cache_path.is_file() and faces32.cache_path.parent == cache_dir
    assert not list(cache_dir.glob("*.tmp"))

    def no_render(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(emoji_data, "render_emoji_set", no_render)
    again = EmojiDataset(32, cache_dir=cache_dir, progress=False)
    assert again.names == faces32.names and torch.equal(again[5][0], faces32[5][0])
    with pytest.raises(AssertionError, match="cache"):
        EmojiDataset(64, cache_dir=cache_dir, progress=False)  # another resolution is another cache entry


def test_missing_emoji_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "emoji", None)  # makes `import emoji` raise ImportError
    with pytest.raises(ImportError, match="pip install emoji"):
        emoji_data.candidate_sequences("all")

"""Noto Color Emoji rendered with Pillow, with labels parsed from the emoji names.

Sequences and names come from the PyPI `emoji` package (`emoji.EMOJI_DATA`, fully-qualified entries only, so
each emoji appears once); the pixels come from the Debian font `fonts-noto-color-emoji`. Each sequence is drawn
as one 136x128 colour glyph, cropped to its bounding box, centred on a white square and resized (Lanczos).
Sequences the font lacks are skipped: they render as nothing, as the font's fallback glyph, or as several
glyphs side by side (a ZWJ or skin-tone sequence the font does not ligate).

The rendered set is cached as a uint8 npz, keyed by font file (path, size, mtime), `emoji` version, resolution
and subset, so it is rendered once per machine.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset
from tqdm import tqdm

from anycost import fileio
from anycost.data.image_folder import check_resolution, uint8_to_tensor
from anycost.fileio import save_npz

FONT_FILE = "NotoColorEmoji.ttf"
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
FONT_SIZE = 109  # the bitmap strike of Noto Color Emoji: one glyph is 136x128 pixels
GLYPH_WIDTH = 136
INSTALL_FONT = "install the Debian package fonts-noto-color-emoji (apt-get install fonts-noto-color-emoji)"
SUBSETS = ("faces_people", "heads", "all")
CACHE_FORMAT = 1

#: Label name -> its values; labels are stored as indices into these tuples.
LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "person_or_face": ("no", "yes"),
    "skin_tone": ("none", "light", "medium-light", "medium", "medium-dark", "dark"),
    "hair": ("none", "red", "curly", "white", "bald", "blond"),
    "gender": ("unknown", "man", "woman", "neutral"),
    "smiling": ("no", "yes"),
}
LABEL_NAMES = tuple(LABEL_VALUES)

_SKIN_TONE = re.compile(r"\b(medium-light|medium-dark|light|medium|dark) skin tone\b")
_HAIR = re.compile(r"\b(red|curly|white|blond) hair\b")
_MALE = {"man", "men", "boy", "prince", "santa"}
_FEMALE = {"woman", "women", "girl", "princess", "mrs."}
_NEUTRAL = {"person", "people", "baby", "child", "adult", "mx", "merperson"}
_PERSON_OR_FACE = _MALE | _FEMALE | _NEUTRAL | {"face", "family", "couple", "kiss", "bride", "groom", "merman",
                                                 "mermaid", "older", "claus", "facepalming"}
_SMILING = {"grinning", "grin", "smiling", "smile", "laughing", "beaming", "joy"}
_NEUTRAL_CODEPOINTS = {"\U0001f9d1", "\U0001f9d2", "\U0001f476"}  # person, child, baby ('farmer' is person+rice)
# The "heads" subset: faces (smileys) and people drawn as a head or head and shoulders (roles, hair styles,
# head gestures), without animal faces, hands and other body parts, full-body activities, groups and fantasy
# figures. At 64 px it is a far more uniform set than faces_people (893 of its 2,317 emoji), which a small GAN
# trained on 2 CPU cores can learn.
_ANIMAL = {"cat", "cow", "dog", "dragon", "monkey", "moon", "mouse", "pig", "rabbit", "tiger", "sun", "chick"}
_NOT_HEAD = _ANIMAL | {
    # hands, arms, legs and other body parts
    "hand", "hands", "handshake", "fist", "finger", "fingers", "thumbs", "pointing", "raised", "ok", "love-you",
    "horns", "vulcan", "writing", "selfie", "nail", "biceps", "leg", "foot", "ear", "nose", "eye", "eyes", "mouth",
    "tongue",
    # the body in motion or in a scene
    "walking", "running", "standing", "kneeling", "dancing", "climbing", "surfing", "rowing", "swimming",
    "bouncing", "lifting", "biking", "cartwheeling", "juggling", "playing", "golfing", "fencing", "snowboarder",
    "horse", "bath", "bed", "lotus", "wheelchair", "cane", "steamy", "suit", "pregnant", "breast-feeding",
    "feeding", "bottle", "shaking",
    # more than one person
    "people", "family", "couple", "kiss", "holding", "wrestling", "bunny",
    # fantasy figures (full body)
    "elf", "fairy", "genie", "mage", "mermaid", "merman", "merperson", "superhero", "supervillain", "vampire",
    "zombie",
    # flags and symbols that pass the person filter
    "isle", "symbol",
}


def _emoji_module():
    try:
        import emoji
    except ImportError as err:
        raise ImportError("the emoji dataset needs the `emoji` package: pip install emoji") from err
    return emoji


def find_font(font_path=None) -> Path:
    """The Noto Color Emoji font file: `font_path` if given, else the first NotoColorEmoji.ttf under FONT_DIRS."""
    if font_path is not None:
        path = Path(font_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"emoji font not found: {path}; {INSTALL_FONT}")
        return path
    for folder in FONT_DIRS:
        found = sorted(Path(folder).rglob(FONT_FILE)) if Path(folder).is_dir() else []
        if found:
            return found[0]
    raise FileNotFoundError(f"{FONT_FILE} not found under {', '.join(FONT_DIRS)}; {INSTALL_FONT}")


def parse_labels(name: str, sequence: str = "") -> dict[str, str]:
    """Labels from an emoji name, in the `emoji` package form (':woman_medium_skin_tone_red_hair:') or the CLDR
    form ('woman: medium skin tone, red hair'). With several people the first skin tone is used, and a name with
    both male and female words has gender 'unknown'. If given, the `sequence` marks genderless person roles whose
    names lack the word 'person' (':farmer:' is person + rice) as 'neutral'.
    """
    text = " ".join(re.sub(r"[_:,]", " ", name).lower().split())
    words = set(text.split())
    tone = _SKIN_TONE.search(text)
    hair = _HAIR.search(text)
    labels = {
        "skin_tone": tone.group(1) if tone else "none",
        "hair": hair.group(1) if hair else "bald" if "bald" in words else "none",
        "smiling": "yes" if words & _SMILING else "no",
    }
    male, female = bool(words & _MALE), bool(words & _FEMALE)
    if male != female:
        labels["gender"] = "man" if male else "woman"
    else:
        neutral = words & _NEUTRAL or _NEUTRAL_CODEPOINTS & set(sequence)
        labels["gender"] = "neutral" if not male and neutral else "unknown"
    modified = labels["skin_tone"] != "none" or labels["hair"] != "none" or labels["gender"] != "unknown"
    labels["person_or_face"] = "yes" if modified or words & _PERSON_OR_FACE else "no"
    return {key: labels[key] for key in LABEL_NAMES}


def base_name(name: str) -> str:
    """An emoji name (either form, see `parse_labels`) without its skin tones, in words: the name its skin-tone
    variants share ('woman_medium_skin_tone_red_hair' and 'woman_red_hair' are both 'woman red hair')."""
    text = " ".join(re.sub(r"[_:,]", " ", name).lower().split())
    return " ".join(_SKIN_TONE.sub(" ", text).split())


def is_head(name: str) -> bool:
    """Whether an emoji name (either form, see `parse_labels`) is drawn as a face or a person's head: a face
    that is not an animal's, or a person with no body part, activity, group or fantasy word in the name."""
    words = set(" ".join(re.sub(r"[_:,]", " ", name).lower().split()).split())
    if "face" in words:
        return not words & _ANIMAL
    return parse_labels(name)["person_or_face"] == "yes" and not words & _NOT_HEAD


def encode_labels(labels: dict[str, str]) -> list[int]:
    """Label dict -> indices in LABEL_NAMES order."""
    return [LABEL_VALUES[key].index(labels[key]) for key in LABEL_NAMES]


class EmojiRenderer:
    """Draws one emoji sequence as a uint8 [R, R, 3] image on white, or None when the font lacks it."""

    def __init__(self, font_path, resolution: int):
        self.resolution = check_resolution(resolution)
        self.font = ImageFont.truetype(str(font_path), FONT_SIZE, layout_engine=ImageFont.Layout.RAQM)
        self._fallback = self._draw("\U0010fffd")  # a private-use code point: the font's fallback glyph

    def _draw(self, sequence: str) -> Image.Image:
        canvas = Image.new("RGBA", (2 * GLYPH_WIDTH, 2 * GLYPH_WIDTH), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((GLYPH_WIDTH // 2, GLYPH_WIDTH // 2), sequence, font=self.font,
                                    embedded_color=True)
        return canvas

    def render(self, sequence: str) -> np.ndarray | None:
        """The glyph cropped to its bounding box, centred on a white square, resized; None if unsupported."""
        if self.font.getlength(sequence) > 1.5 * GLYPH_WIDTH:  # several glyphs: the sequence is not ligated
            return None
        glyph = self._draw(sequence)
        box = glyph.getchannel("A").getbbox()
        if box is None or glyph.tobytes() == self._fallback.tobytes():
            return None
        glyph = glyph.crop(box)
        side = max(glyph.size)
        square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        image = square.convert("RGB").resize((self.resolution, self.resolution), Image.Resampling.LANCZOS)
        return np.asarray(image, dtype=np.uint8)


def candidate_sequences(subset: str) -> list[tuple[str, str]]:
    """(sequence, name) of the fully-qualified emoji in `subset`, sorted by name; names without colons."""
    if subset not in SUBSETS:
        raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
    emoji = _emoji_module()
    fully_qualified = emoji.STATUS["fully_qualified"]
    pairs = sorted((data["en"].strip(":"), seq) for seq, data in emoji.EMOJI_DATA.items()
                   if data.get("status") == fully_qualified and "en" in data)
    if subset == "heads":
        return [(seq, name) for name, seq in pairs if is_head(name)]
    return [(seq, name) for name, seq in pairs
            if subset == "all" or parse_labels(name, seq)["person_or_face"] == "yes"]


def render_emoji_set(font_path, resolution: int, subset: str, progress: bool = True) -> dict[str, np.ndarray]:
    """Render every supported sequence of `subset`: arrays images uint8 [N, R, R, 3], labels int64 [N, L],
    names and sequences (unicode)."""
    renderer = EmojiRenderer(font_path, resolution)
    images, labels, names, sequences = [], [], [], []
    for seq, name in tqdm(candidate_sequences(subset), desc=f"rendering emoji ({subset}, {resolution}px)",
                          unit="emoji", disable=not progress):
        pixels = renderer.render(seq)
        if pixels is not None:
            images.append(pixels)
            labels.append(encode_labels(parse_labels(name, seq)))
            names.append(name)
            sequences.append(seq)
    if not images:
        raise RuntimeError(f"the font {font_path} rendered none of the {subset} emoji; {INSTALL_FONT}")
    return {"images": np.stack(images), "labels": np.asarray(labels, dtype=np.int64),
            "names": np.asarray(names), "sequences": np.asarray(sequences)}


def cache_file(cache_dir: Path, font_path: Path, resolution: int, subset: str) -> Path:
    """Cache path keyed by the font file (resolved path, size, mtime), the emoji version, resolution, subset and
    the subset's emoji (so a change to a subset's rule renders it again)."""
    stat = font_path.stat()
    members = hashlib.sha256("\n".join(seq for seq, _ in candidate_sequences(subset)).encode()).hexdigest()
    key = [CACHE_FORMAT, str(font_path.resolve()), stat.st_size, stat.st_mtime_ns, _emoji_module().__version__,
           members]
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]
    return cache_dir / f"{subset}_{resolution}px_{digest}.npz"


def _load(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in ("images", "labels", "names", "sequences")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(f"ignoring unreadable emoji cache {path}: {err}", stacklevel=3)
        return None


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/anycost/emoji, by default ~/.cache/anycost/emoji."""
    return fileio.cache_dir() / "emoji"


class EmojiDataset(Dataset):
    """Rendered emoji: item i is (image float [3, R, R] in [-1, 1], labels int64 [len(label_names)]).

    `label_names` and `label_values` give the meaning of the label indices; `names` and `sequences` identify each
    emoji and `describe(i)` gives its labels as strings. `subset="faces_people"` keeps the emoji whose name
    mentions a face or a person, or that carry a skin-tone or hair modifier (including skin-toned hands);
    `subset="heads"` only those drawn as a face or a head (`is_head`).
    """

    label_names = LABEL_NAMES
    label_values = LABEL_VALUES

    def __init__(self, resolution: int = 64, subset: str = "faces_people", font_path=None, cache_dir=None,
                 progress: bool = True):
        self.resolution = check_resolution(resolution)
        if subset not in SUBSETS:
            raise ValueError(f"subset must be one of {SUBSETS}, got {subset!r}")
        self.subset = subset
        self.font_path = find_font(font_path)
        cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.cache_path = cache_file(cache_dir, self.font_path, resolution, subset)
        data = _load(self.cache_path) if self.cache_path.is_file() else None
        if data is None:
            data = render_emoji_set(self.font_path, resolution, subset, progress=progress)
            save_npz(self.cache_path, data)
        self.images = data["images"]
        self.labels = torch.from_numpy(data["labels"])
        self.names = data["names"].tolist()
        self.sequences = data["sequences"].tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return uint8_to_tensor(self.images[index]), self.labels[index]

    def describe(self, index: int) -> dict[str, str]:
        """The labels of item `index` as strings."""
        return {key: LABEL_VALUES[key][int(v)] for key, v in zip(LABEL_NAMES, self.labels[index])}

"""What every ``anycost`` command shares: its help formatter, argument types with one-line errors, the model
options and the checks of output paths."""

from __future__ import annotations

import argparse
from pathlib import Path

#: Image formats an output image may be written in (by its file extension).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help unless the help already says its default, the default is
    None (nothing to show) or it is a flag's False."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def seeds(text: str) -> list[int]:
    """'0,3,7' or '0-3' (inclusive) or a mix: '0-2,9'."""
    out = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use e.g. 0,1,2 or 0-7") from None
        if last < first:
            raise argparse.ArgumentTypeError(f"seed range {part.strip()!r} runs backwards: write {last}-{first}")
        out += range(first, last + 1)
    return out


def ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad ratio {text!r}: give a number in (0, 1], e.g. 0.25") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"ratio must be in (0, 1], got {text}")
    return value


def ratio_list(text: str) -> tuple[float, ...]:
    """'0.25,0.5,1' -> (0.25, 0.5, 1.0), each in (0, 1]."""
    values = tuple(ratio(part) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError("no ratios given")
    return values


def parse_list(text: str, kind: type) -> list:
    """'1024,512' -> [1024, 512] (ints or floats), with a clear error."""
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"bad list {text!r}: use comma-separated {kind.__name__}s") from None
    if not values:
        raise ValueError("empty list")
    return values


def image_file(text: str) -> Path:
    """An output image path: a file name ending in one of IMAGE_SUFFIXES, not an existing folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give an image file name, e.g. {path / 'out.png'}")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text!r} has no image extension: end it in one of "
                                         f"{', '.join(IMAGE_SUFFIXES)}")
    return path


def output_folder(text: str) -> Path:
    """An output folder: a path that is not an existing file (it is created when the command writes)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder: give a folder for the outputs")
    return path


def image_or_folder(text: str) -> Path:
    """An output that is an image file when it ends in an image extension (`image_file`), else a folder
    (`output_folder`)."""
    if Path(text).suffix.lower() in IMAGE_SUFFIXES:
        return image_file(text)
    return output_folder(text)


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--checkpoint and --impl, the options of every command that runs a generator."""
    p.add_argument("--checkpoint", "-c", help="generator file (.safetensors or official .pt); "
                                               "default: the bundled model")
    p.add_argument("--impl", choices=("auto", "kernel", "ref"), default="auto", help="op implementation")


def set_threads(n: int | None) -> None:
    """torch.set_num_threads(n) when a --threads was given."""
    if n is None:
        return
    if n < 1:
        raise ValueError(f"--threads must be >= 1, got {n}")
    import torch

    torch.set_num_threads(n)

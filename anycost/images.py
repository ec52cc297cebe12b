"""Conversion of raw generator outputs to pixels, and labelled image grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw


def pyplot():
    """matplotlib.pyplot on the headless Agg backend, or None when matplotlib is not installed (a dev extra: plots
    are written only where it is)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Images [N, C, H, W] as three channels: a grey image (C = 1) is copied to R, G and B (a view)."""
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Raw outputs [N, 3, H, W] (nominally in [-1, 1]) -> uint8 [N, H, W, 3]; clamping happens here."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be [N, 3, H, W], got {tuple(images.shape)}")
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def save_image(image: torch.Tensor, path) -> Path:
    """Save one raw output [3, H, W] or [1, 3, H, W] as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image.reshape(1, *image.shape[-3:]))[0]).save(path)
    return path


def image_grid(rows: list[torch.Tensor], size: int, labels: list[list[str]] | None = None,
               label_height: int = 14, pad: int = 2, header: list[str] | None = None) -> Image.Image:
    """A grid of raw outputs: one row per tensor [N, 3, h, w], every cell resized to `size` (nearest).

    Optional `labels[r][c]` are drawn under each cell (cut to the cell's width, ending in ".."), and `header[c]`,
    column names, once above the first row, wrapped onto as many lines of `label_height` as the widest needs.
    """
    n_cols = max(r.shape[0] for r in rows)
    cell_h = size + (label_height if labels else 0)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    header_lines = [_wrap(measure, text, size - 2) for text in header] if header else []
    top = max((len(lines) for lines in header_lines), default=0) * label_height
    grid = Image.new("RGB", (n_cols * (size + pad) + pad, top + len(rows) * (cell_h + pad) + pad), "white")
    draw = ImageDraw.Draw(grid)
    for c, lines in enumerate(header_lines):
        for i, line in enumerate(lines):
            draw.text((pad + c * (size + pad) + 1, pad + i * label_height), line, fill="black")
    for r, row in enumerate(rows):
        up = F.interpolate(row.detach().float().cpu(), size=(size, size), mode="nearest")
        for c, pixels in enumerate(to_uint8(up)):
            x, y = pad + c * (size + pad), top + pad + r * (cell_h + pad)
            grid.paste(Image.fromarray(pixels), (x, y))
            if labels:
                draw.text((x + 1, y + size + 1), _cut(draw, labels[r][c], size - 2), fill="black")
    return grid


def _cut(draw: ImageDraw.ImageDraw, text: str, width: float) -> str:
    """`text`, or its longest prefix + ".." that fits `width` pixels."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "..") > width:
        text = text[:-1]
    return text + ".."


def _wrap(draw: ImageDraw.ImageDraw, text: str, width: float) -> list[str]:
    """`text` in lines that fit `width` pixels, broken after "-", "_" or " " where it can be, else anywhere."""
    lines = []
    while draw.textlength(text) > width:
        fit = len(text)
        while fit > 1 and draw.textlength(text[:fit]) > width:
            fit -= 1
        breaks = [i + 1 for i, ch in enumerate(text[:fit]) if ch in "-_ "]
        cut = breaks[-1] if breaks else fit
        lines.append(text[:cut].rstrip())
        text = text[cut:]
    return lines + [text]

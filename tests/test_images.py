"""Labelled image grids: cells where they belong, column names wrapped to their cell, labels cut to it."""

import numpy as np
import torch
from PIL import Image, ImageDraw

from anycost.images import _cut, _wrap, image_grid

NAMES = ["input", "teacher", "gan-compression-40k", "a_name_with_no_break_at_all_in_it", "target"]


def test_header_names_wrap_to_their_cell_and_keep_every_character():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    for name in NAMES:
        lines = _wrap(draw, name, 62)
        assert all(draw.textlength(line) <= 62 for line in lines)
        assert "".join(lines) == name  # broken after "-" / "_" (kept), or anywhere: nothing lost
    assert _wrap(draw, "gan-compression-40k", 62)[0].endswith("-")
    assert _wrap(draw, "input", 62) == ["input"]


def test_labels_are_cut_to_their_cell():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    assert _cut(draw, "short", 62) == "short"
    cut = _cut(draw, "a label far too long for one cell", 62)
    assert cut.endswith("..") and draw.textlength(cut) <= 62 and "a label far too long".startswith(cut[:-2])


def test_the_header_sits_above_the_cells():
    rows = [torch.full((5, 3, 8, 8), v) for v in (-1.0, 1.0)]  # a black row, then a white one
    plain = np.asarray(image_grid(rows, 64))
    named = np.asarray(image_grid(rows, 64, header=NAMES))
    extra = named.shape[0] - plain.shape[0]
    assert extra > 0 and extra % 14 == 0 and named.shape[1] == plain.shape[1]
    np.testing.assert_array_equal(named[extra:], plain)  # the cells, moved down by the header
    assert named[:extra].min() < 128  # dark text on white

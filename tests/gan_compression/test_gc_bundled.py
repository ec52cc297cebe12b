"""`gan_compression.load_bundled`: the shipped teacher and compressed generators of edges -> shoes load, cost what
the model card says, and map the task's validation edges to shoes; bad requests are one-line errors."""

import pytest
import torch
from gc_fixtures import needs_fashion

from anycost.gan_compression import load_bundled, validation_pairs
from anycost.models.i2i import I2IConfig

TASK = "fmnist-edges2shoes"


def test_the_compressed_generator_is_the_searched_sub_network_at_a_ninth_of_the_teachers_macs():
    teacher, compressed = load_bundled(TASK, "teacher"), load_bundled(TASK)
    assert not teacher.arch.separable and compressed.arch.separable
    assert teacher.arch.widths == (16, 32, 64, *(64,) * 9, 32, 16)
    assert compressed.arch.widths == (8, 16, 36, 28, 28, 40, 20, 16, 20, 16, 16, 12, 16, 8)
    assert I2IConfig.full(teacher.arch).macs / I2IConfig.full(compressed.arch).macs >= 9
    assert not compressed.training and not teacher.training


@needs_fashion
@torch.no_grad()
def test_both_map_validation_edges_to_shoes():
    inputs, targets = validation_pairs(TASK, 64)
    l1 = {}
    for role in ("teacher", "compressed"):
        out = load_bundled(TASK, role)(inputs)
        assert out.shape == targets.shape and out.abs().max() <= 1
        l1[role] = (out - targets).abs().mean().item()
    blank = (targets.new_full(targets.shape, -1) - targets).abs().mean().item()  # an all-black guess
    assert l1["teacher"] < 0.5 * blank and l1["compressed"] < 0.5 * blank
    assert l1["compressed"] < 1.25 * l1["teacher"]


def test_bad_requests():
    with pytest.raises(ValueError, match="role must be one of"):
        load_bundled(TASK, "student")
    with pytest.raises(ValueError, match="unknown task 'horse2zebra'"):
        load_bundled("horse2zebra")
    with pytest.raises(FileNotFoundError, match="no bundled compressed generator for emoji-edges2emoji"):
        load_bundled("emoji-edges2emoji")

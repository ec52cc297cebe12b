"""The Canny edge filter and the paired edges -> shoes task built with it."""

import pytest
import torch
from gc_fixtures import TASK, needs_fashion

from anycost.gan_compression import TASKS, load_pairs, validation_pairs
from anycost.gan_compression.edges import canny


def square(n=1, size=32, lo=8, hi=24) -> torch.Tensor:
    x = torch.zeros(n, size, size)
    x[:, lo:hi, lo:hi] = 1.0
    return x


def test_canny_outlines_a_square_with_a_thin_closed_contour():
    edges = canny(square())[0]
    assert edges.dtype == torch.bool and edges.shape == (32, 32)
    assert not edges[12:20, 12:20].any() and not edges[:5].any() and not edges[:, 27:].any()  # inside, outside
    for row in (12, 16, 20):  # each side crossed by an edge one or two pixels thick, near the square's border
        assert 1 <= int(edges[row, :16].sum()) <= 2 and 1 <= int(edges[row, 16:].sum()) <= 2
        cols = torch.nonzero(edges[row]).flatten()
        assert cols.min() in (7, 8) and cols.max() in (23, 24)


def test_canny_is_per_image_and_takes_uint8_and_channel_dims():
    batch = torch.stack([square()[0], torch.zeros(32, 32), square(lo=4, hi=12)[0]])
    edges = canny(batch)
    assert not edges[1].any()  # a flat image has no edges, whatever its neighbours in the batch
    for i in range(3):
        assert torch.equal(edges[i], canny(batch[i:i + 1])[0])
    assert torch.equal(canny((batch * 255).to(torch.uint8)), edges)
    assert torch.equal(canny(batch.unsqueeze(1)), edges.unsqueeze(1))
    faint = square() * 0.5  # a step of 0.5 is a gradient of about 0.19 once smoothed: above 0.1, below 0.25
    assert canny(faint, low=0.05, high=0.1).any() and not canny(faint, low=0.2, high=0.25).any()


@pytest.mark.parametrize(("images", "kwargs", "message"), [
    (torch.zeros(2, 3, 8, 8), {}, r"grey images \[N, H, W\] or \[N, 1, H, W\], got \(2, 3, 8, 8\)"),
    (torch.zeros(8, 8), {}, "grey images"),
    (torch.zeros(1, 8, 8), dict(low=0.3, high=0.2), "0 <= low <= high"),
])
def test_canny_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        canny(images, **kwargs)


@needs_fashion
def test_the_edges_to_shoes_task_shapes_values_and_fixed_split():
    task = TASKS[TASK]
    train, val = load_pairs(TASK, "train"), load_pairs(TASK, "validation")
    assert len(train) + len(val) == 21000 and len(val) == task.n_validation == 2048
    inputs, targets = validation_pairs(TASK, 5)
    assert inputs.shape == targets.shape == (5, 3, 32, 32) and inputs.dtype == targets.dtype == torch.float32
    for x in (inputs, targets):
        assert x.min() >= -1 and x.max() <= 1 and torch.equal(x[:, 0], x[:, 2])  # grey replicated to RGB
    assert set(inputs.unique().tolist()) == {-1.0, 1.0}  # black edges on white
    assert 0.02 < (inputs == -1).float().mean() < 0.3
    assert (targets[:, :, :2] == -1).all()  # the black padding around the 28 px images
    assert torch.equal(validation_pairs(TASK)[0][:5], inputs)  # the same split on every call
    expected = canny(((targets[:, 0] + 1) * 127.5).round().to(torch.uint8), task.sigma, task.low, task.high)
    assert torch.equal(inputs[:, 0] == -1, expected)
    batch = train.batch(torch.tensor([0, 1]))
    assert batch[0].shape == (2, 3, 32, 32)
    pairs = {(bytes(a.numpy()), bytes(b.numpy())) for a, b in zip(val.inputs[:200], val.targets[:200])}
    assert not pairs & {(bytes(a.numpy()), bytes(b.numpy())) for a, b in zip(train.inputs, train.targets)}


@needs_fashion
def test_task_bad_input():
    with pytest.raises(ValueError, match="unknown task 'shoes'; the tasks are fmnist-edges2shoes"):
        validation_pairs("shoes", 4)
    with pytest.raises(ValueError, match=r"n must be an integer in 1\.\.2048"):
        validation_pairs(TASK, 0)
    with pytest.raises(ValueError, match="split must be one of"):
        load_pairs(TASK, "test")

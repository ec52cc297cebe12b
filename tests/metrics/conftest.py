"""Fixtures of the metric tests: one torch thread, and a cheap stand-in for the Inception features."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """For tests that train or run Inception: one thread (the cores are shared), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class MeanColour:
    """A cheap stand-in feature extractor: per-channel means and stds (6-d)."""

    identifier = "mean-colour"

    def __call__(self, images):
        return torch.cat([images.mean((2, 3)), images.std((2, 3))], 1)


@pytest.fixture
def mean_colour():
    return MeanColour()

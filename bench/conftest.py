"""pytest-benchmark settings for bench/: 2 threads (the targets' setting), inference mode."""

import pytest
import torch
from _timing import THREADS


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    with torch.inference_mode():
        yield
    torch.set_num_threads(before)

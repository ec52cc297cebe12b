import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread for every projection test (the cores are shared), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

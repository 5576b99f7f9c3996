"""The suite uses tiny tensors: every test runs on one intra-op thread."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops gain nothing from a second thread, and on a busy machine waking it costs ms."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

import os

import pytest
import torch

# Two cores: keep PyTorch from oversubscribing them while tests run.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def tiny_flags():
    """Flags for a run that takes a few seconds on 2 CPU cores."""
    return ["--dataset", "synthetic", "--batch-size", "16", "--g-filters", "16",
            "--c-filters", "8", "--no-progress"]


@pytest.fixture
def one_thread():
    """Tiny tensors: a second thread only adds waiting (a lot, when the cores are busy)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

import collections
import os
from pathlib import Path

import pytest
import torch

# Two cores: keep PyTorch from oversubscribing them while tests run; with pytest-xdist
# (scripts/test.sh: -n auto) each worker takes one core.
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    """Files with the most slow tests first, each file's tests in their order. pytest-xdist
    hands out one file at a time (scripts/test.sh: --dist loadfile --no-loadscope-reorder),
    and a slow file handed out last keeps one worker busy while the other waits."""
    slow = collections.Counter(item.path for item in items if item.get_closest_marker("slow"))
    first_seen = {path: i for i, path in enumerate(dict.fromkeys(item.path for item in items))}
    items.sort(key=lambda item: (-slow[item.path], first_seen[item.path]))


@pytest.fixture
def stub_evaluator(monkeypatch):
    """An untrained CNN evaluator with provenance, so no weights are trained or read."""
    from wganlab.metrics import Evaluator, evaluate

    torch.manual_seed(0)
    ev = Evaluator(feature_dim=16, width=4).eval().requires_grad_(False)
    ev.info = {"architecture": {"name": "stub-cnn"}, "dataset": "synthetic",
               "sha256": "ab" * 32, "test_accuracy": 0.5}
    monkeypatch.setattr(evaluate, "get_evaluator", lambda *a, **k: ev)
    evaluate._REFERENCE_CACHE.clear()
    return ev


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """tiny_run(preset="wgan-gp", steps=3, *extra) -> the directory of a finished tiny run
    (tests/tiny.py), trained in this process once per session for each distinct set of
    arguments. Shared: read it; take tiny.copy_run(...) to change files in it."""
    from tiny import train_argv
    from wganlab.cli import main

    made = {}

    def get(preset: str = "wgan-gp", steps: int = 3, *extra) -> Path:
        key = (preset, steps, *map(str, extra))
        if key not in made:
            out = tmp_path_factory.mktemp(f"tiny-{preset}") / "run"
            assert main(train_argv(preset, out, steps, *extra)) == 0
            made[key] = out
        return made[key]

    return get


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

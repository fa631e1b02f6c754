"""Promise 10: the same seed gives the same metrics on CPU; --deterministic turns on PyTorch's
deterministic algorithms. (Across processes, see test_resume: a child process's first steps
equal the reference run's made in this process.)"""

import pytest
import torch

from .runs import loss_rows, train_argv


def test_same_seed_same_metrics(tmp_path, cli):
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        code, _, err = cli(*train_argv("wgan-gp", tmp_path / name, 5, "--seed", seed,
                                       "--log-every", 1))
        assert code == 0, err
        runs[name] = loss_rows(tmp_path / name)
    assert len(runs["a"]) == 5
    assert runs["a"] == runs["b"]  # every value but the wall time
    assert all(a["g_loss"] != c["g_loss"] for a, c in zip(runs["a"], runs["c"]))


@pytest.fixture
def deterministic_calls(monkeypatch):
    """Record torch.use_deterministic_algorithms calls; restore the global flag afterwards."""
    calls, real = [], torch.use_deterministic_algorithms
    was = torch.are_deterministic_algorithms_enabled()
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)  # restored afterwards

    def spy(mode, **kwargs):
        calls.append(mode)
        real(mode, **kwargs)

    monkeypatch.setattr(torch, "use_deterministic_algorithms", spy)
    yield calls
    real(was)


def test_deterministic_flag(tmp_path, cli, deterministic_calls):
    code, _, err = cli(*train_argv("wgan-gp", tmp_path / "plain", 1))
    assert code == 0 and True not in deterministic_calls, err
    code, _, err = cli(*train_argv("wgan-gp", tmp_path / "det", 1, "--deterministic"))
    assert code == 0, err
    assert deterministic_calls == [True]
    assert torch.are_deterministic_algorithms_enabled()

"""Promise 4: NaN or Inf stops the run (exit 5, naming step and term) or, with --on-nan skip,
is skipped and counted; no checkpoint holding a non-finite value is ever written.

NaN is injected in this process at a chosen call of a loss function, of the gradient penalty,
or into a gradient (a tensor hook), or into a BatchNorm layer's input.
"""

import importlib
import math

import pytest
import torch
from torch import nn

from wganlab import losses
from wganlab.base import checkpoint
from wganlab.errors import NonFiniteError

from .runs import loss_rows, steps_on_disk, train_argv

# The training loop module (the package exports a function named `train`).
train_module = importlib.import_module("wganlab.training.state")


def nan_on_call(fn, call: int, replace):
    """fn, except that its call-th call (1-based) returns replace(result)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        out = fn(*args, **kwargs)
        return replace(out) if len(calls) == call else out

    return wrapped


def assert_every_checkpoint_finite(run):
    for path in checkpoint.list_checkpoints(run):
        assert checkpoint.non_finite(checkpoint.load(path)) == [], path


def test_nan_critic_loss_stops_with_exit_5(tmp_path, cli, monkeypatch):
    # The seed preset makes one critic-loss call per step: call 3 is step 3.
    critic_loss, generator_loss = losses.LOSSES["wasserstein"]
    monkeypatch.setitem(losses.LOSSES, "wasserstein", (nan_on_call(
        critic_loss, 3, lambda x: x * math.nan), generator_loss))
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("seed", run, 6, "--checkpoint-every", 1))
    assert code == NonFiniteError.exit_code == 5
    line = err.strip()
    assert "\n" not in line and "step 3" in line and "d_loss" in line, err
    assert steps_on_disk(run) == [1, 2]  # nothing written at or after the bad step
    assert_every_checkpoint_finite(run)


def test_inf_gradient_penalty_stops_with_exit_5(tmp_path, cli, monkeypatch):
    # wgan-gp: five critic updates per step; call 16 is step 4's first.
    monkeypatch.setitem(losses.PENALTIES, "gp", (nan_on_call(
        losses.gradient_penalty, 16, lambda out: (out[0] * math.inf, out[1])), True))
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 6, "--checkpoint-every", 1))
    assert code == 5
    assert "step 4" in err and "gp" in err, err
    assert steps_on_disk(run) == [1, 2, 3]
    assert_every_checkpoint_finite(run)


def poison_generator_grad(at_backward: int):
    """build_models, with a hook that makes one generator weight's gradient NaN once."""
    build = train_module.build_models

    def build_poisoned(*args, **kwargs):
        generator, critic = build(*args, **kwargs)
        weight = next(p for p in generator.parameters() if p.dim() > 1)
        weight.register_hook(nan_on_call(lambda g: g, at_backward, lambda g: g * math.nan))
        return generator, critic

    return build_poisoned


def test_nan_gradient_stops_with_exit_5(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(train_module, "build_models", poison_generator_grad(2))
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 4, "--checkpoint-every", 1))
    assert code == 5
    assert "step 2" in err and "g_grad_norm" in err, err
    assert steps_on_disk(run) == [1]


def test_on_nan_skip_skips_and_counts(tmp_path, cli, monkeypatch):
    # NaN in the *first* of step 2's five critic updates: the step still counts as skipped.
    monkeypatch.setitem(losses.PENALTIES, "gp", (nan_on_call(
        losses.gradient_penalty, 6, lambda out: (out[0] * math.nan, out[1])), True))
    run = tmp_path / "run"
    code, out, err = cli(*train_argv("wgan-gp", run, 4, "--on-nan", "skip"))
    assert code == 0, err
    assert "Skipped 1 steps" in out
    state = checkpoint.load(checkpoint.checkpoint_path(run, 4))
    assert state["skipped"] == 1
    assert_every_checkpoint_finite(run)
    assert [r["step"] for r in loss_rows(run)] == [1, 2, 3, 4]


def poison_batchnorm_input(at_call: int):
    """build_models, with the generator's first BatchNorm seeing NaN input once: its running
    statistics turn NaN although no parameter does."""
    build = train_module.build_models

    def build_poisoned(*args, **kwargs):
        generator, critic = build(*args, **kwargs)
        norm = next(m for m in generator.modules()
                    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
        calls = []

        def hook(module, inputs):
            calls.append(1)
            if len(calls) == at_call and module.training:
                return (inputs[0] * math.nan,)
            return None

        norm.register_forward_pre_hook(hook)
        return generator, critic

    return build_poisoned


def test_no_checkpoint_with_nan_statistics_is_written(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(train_module, "build_models", poison_batchnorm_input(3))
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 4, "--on-nan", "skip",
                                   "--checkpoint-every", 1))
    assert code == 5
    assert "running_mean" in err or "running_var" in err, err
    assert steps_on_disk(run) == []  # the NaN came in step 1; nothing was saved after it
    assert_every_checkpoint_finite(run)


def test_save_refuses_non_finite_state(tmp_path):
    state = {"generator": {"w": torch.ones(3)}, "g_optimizer": {"state": {0: {
        "exp_avg_sq": torch.tensor([1.0, math.inf])}}}}
    with pytest.raises(NonFiniteError, match=r"g_optimizer\.state\.0\.exp_avg_sq"):
        checkpoint.save(state, tmp_path / "step-00000001.pt")
    assert list(tmp_path.iterdir()) == []

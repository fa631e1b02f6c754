"""Every recipe's critic and generator losses, run through training/steps.py, against values
derived by hand in float64 NumPy.

The networks are chosen so the answers are closed-form:
- the critic is linear, D(x) = g <w, x> + b, with ||w|| = 3, so the gradient at every
  interpolate has norm g * 3 and the penalty is (3g - 1)^2 exactly (norm 3, not 2: at norm 2
  (n-1)^2 = n-1 and a missing square would not show). Its gain g is 1 in training mode and 2
  in inference mode, so the penalty also says which mode the critic was in: 4 or 25.
- the generator is linear, G(z) = A z, so its gradients are outer products.
The optimizers are SGD with lr 1, so each update moves a weight by exactly minus its gradient:
the tests check the gradients that were really applied, not only the logged numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from wganlab.config import Config, get_preset
from wganlab.training import steps

N, SHAPE, Z = 6, (1, 2, 2), 3
D = int(np.prod(SHAPE))
TRAIN_GAIN, EVAL_GAIN = 1.0, 2.0


class ModeLinearCritic(nn.Module):
    """D(x) = g <w, x> + b; g = 1 in training mode, 2 in inference mode. Features: x itself."""

    def __init__(self, w: np.ndarray, b: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, x, return_features=False):
        gain = TRAIN_GAIN if self.training else EVAL_GAIN
        score = gain * (x.flatten(1) * self.w).sum(1) + self.b
        return (score, x.flatten(1)) if return_features else score


class LinearGenerator(nn.Module):
    def __init__(self, a: np.ndarray):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, z):
        return (z @ self.a.T).view(-1, *SHAPE)


def softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.fixture
def setup():
    rng = np.random.default_rng(0)
    w = rng.normal(size=D)
    w *= 3.0 / np.linalg.norm(w)  # ||w|| = 3
    a = rng.normal(size=(D, Z)) * 0.5
    real = rng.uniform(-1, 1, size=(N, D))
    z = rng.normal(size=(N, Z))
    return dict(w=w, b=0.25, a=a, real=real, z=z)


def nets(s):
    critic, generator = ModeLinearCritic(s["w"], s["b"]).train(), LinearGenerator(s["a"]).train()
    c_opt = torch.optim.SGD(critic.parameters(), lr=1.0)
    g_opt = torch.optim.SGD(generator.parameters(), lr=1.0)
    return critic, generator, c_opt, g_opt


def tensors(s):
    real = torch.tensor(s["real"]).view(N, *SHAPE)
    return real, torch.tensor(s["z"])


def critic_by_hand(t, s):
    """(loss, dL/dw, dL/db, penalty) of the critic for config t, with scores in training mode."""
    w, b, x_r = s["w"], s["b"], s["real"]
    x_f = s["z"] @ s["a"].T
    d_r, d_f = x_r @ w + b, x_f @ w + b
    if t.loss == "wasserstein":
        loss = d_f.mean() - d_r.mean()
        dw, db = x_f.mean(0) - x_r.mean(0), 0.0
    elif t.loss == "hinge":
        act_r, act_f = (1 - d_r > 0), (1 + d_f > 0)
        loss = np.maximum(1 - d_r, 0).mean() + np.maximum(1 + d_f, 0).mean()
        dw = (-(act_r[:, None] * x_r).sum(0) + (act_f[:, None] * x_f).sum(0)) / N
        db = (-act_r.sum() + act_f.sum()) / N
    else:  # -log sigmoid(d_r) - log(1 - sigmoid(d_f))
        loss = softplus(-d_r).mean() + softplus(d_f).mean()
        dw = ((-sigmoid(-d_r))[:, None] * x_r + sigmoid(d_f)[:, None] * x_f).mean(0)
        db = (-sigmoid(-d_r) + sigmoid(d_f)).mean()
    penalty = None
    gain = EVAL_GAIN if t.gp_eval_mode else TRAIN_GAIN
    norm = gain * np.linalg.norm(w)  # ||grad_x D|| at every point, interpolate or real
    if t.penalty == "gp":
        penalty = (norm - 1) ** 2
        loss += t.gp_weight * penalty
        dw = dw + t.gp_weight * 2 * (norm - 1) * gain * w / np.linalg.norm(w)
    elif t.penalty == "r1":  # (1/2) ||g w||^2, whose gradient in w is g^2 w
        penalty = 0.5 * norm ** 2
        loss += t.gp_weight * penalty
        dw = dw + t.gp_weight * gain ** 2 * w
    return loss, dw, db, penalty, d_r.mean(), d_f.mean()


def generator_by_hand(t, s, w=None, b=None):
    """(loss, dL/dA) of the generator against the critic (w, b) in training mode."""
    w = s["w"] if w is None else w
    b = s["b"] if b is None else b
    z, x_f = s["z"], s["z"] @ s["a"].T
    d_f = x_f @ w + b
    if t.feature_matching:
        diff = s["real"].mean(0) - x_f.mean(0)
        return (diff ** 2).sum(), -2 * np.outer(diff, z.mean(0))
    if t.loss in ("wasserstein", "hinge"):
        return -d_f.mean(), -np.outer(w, z.mean(0))
    if t.loss == "minimax":
        return -softplus(d_f).mean(), -np.outer(w, (sigmoid(d_f)[:, None] * z).mean(0))
    return softplus(-d_f).mean(), np.outer(w, (-sigmoid(-d_f)[:, None] * z).mean(0))


def step_of(t, critic, generator, c_opt, g_opt):
    """The project's one step body for train config t, checks on the host."""
    return steps.Step(Config(train=t), generator, critic, g_opt, c_opt, steps.HostCheck("stop"))


ALPHA = torch.rand(N, dtype=torch.float64, generator=torch.Generator().manual_seed(3))


def close(tensor, value, tol=1e-10):
    np.testing.assert_allclose(np.asarray(tensor.detach()), value, rtol=tol, atol=tol)


WGAN_GP = dict(loss="wasserstein", penalty="gp", gp_weight=10.0)
RECIPES = {  # preset -> what its train config must say about the loss
    "seed": dict(WGAN_GP, shared_step=True, gp_eval_mode=True),
    "wgan-gp": dict(WGAN_GP, shared_step=False, gp_eval_mode=False),
    "cpu-demo": dict(WGAN_GP, shared_step=False, gp_eval_mode=False),
    "fast": dict(WGAN_GP, shared_step=False, gp_eval_mode=False),
    "dcgan": dict(loss="non-saturating", penalty="none", shared_step=False),
    "wgan": dict(loss="wasserstein", penalty="none", shared_step=False, clip=0.01),
    "sngan": dict(loss="hinge", penalty="none", shared_step=False),
}


@pytest.mark.parametrize("preset", list(RECIPES))
def test_presets_name_the_recipe_the_tests_below_check(preset):
    t = get_preset(preset).train
    assert {k: getattr(t, k) for k in RECIPES[preset]} == RECIPES[preset]
    assert not t.feature_matching


def configs():
    """Each preset's own train config, some with another penalty weight or feature matching."""
    out = {name: get_preset(name).train for name in ("seed", "wgan-gp", "dcgan", "wgan",
                                                     "sngan")}
    out["wgan-gp lambda 7"] = dataclasses.replace(out["wgan-gp"], gp_weight=7.0)
    out["seed lambda 3"] = dataclasses.replace(out["seed"], gp_weight=3.0)
    out["wgan-gp eval-mode penalty"] = dataclasses.replace(out["wgan-gp"], gp_eval_mode=True)
    out["minimax"] = dataclasses.replace(out["dcgan"], loss="minimax")
    out["wgan-gp r1 gamma 2"] = dataclasses.replace(out["wgan-gp"], penalty="r1", gp_weight=2.0)
    out["dcgan r1 eval-mode"] = dataclasses.replace(out["dcgan"], penalty="r1", gp_weight=0.5,
                                                    gp_eval_mode=True)
    out["hinge with gp"] = dataclasses.replace(out["sngan"], penalty="gp")
    out["wgan-gp feature matching"] = dataclasses.replace(out["wgan-gp"], feature_matching=True)
    out["seed feature matching"] = dataclasses.replace(out["seed"], feature_matching=True)
    return out


CONFIGS = configs()
SEPARATE = [k for k, t in CONFIGS.items() if not t.shared_step]
SHARED = [k for k, t in CONFIGS.items() if t.shared_step]


@pytest.mark.parametrize("name", SEPARATE)
def test_critic_update_matches_the_hand_derived_loss_and_gradient(name, setup):
    t = CONFIGS[name]
    critic, generator, c_opt, g_opt = nets(setup)
    real, z = tensors(setup)
    terms, ok = step_of(t, critic, generator, c_opt, g_opt).critic_update(real, z, ALPHA)
    loss, dw, db, penalty, d_r, d_f = critic_by_hand(t, setup)
    assert ok and critic.training  # the penalty pass must leave the critic as it found it
    close(terms["d_loss"], loss)
    close(terms["d_real"], d_r)
    close(terms["d_fake"], d_f)
    if penalty is None:
        assert "gp" not in terms and "r1" not in terms
    else:
        close(terms[t.penalty], penalty)
        gain = EVAL_GAIN if t.gp_eval_mode else TRAIN_GAIN
        close(terms[f"{t.penalty}_norm_mean"], 3.0 * gain)
        assert ("gp_norm_near_1" in terms) == (t.penalty == "gp")
    w_after, b_after = setup["w"] - dw, setup["b"] - db
    if t.clip is not None:
        w_after, b_after = np.clip(w_after, -t.clip, t.clip), np.clip(b_after, -t.clip, t.clip)
        share = (np.sum(np.abs(w_after) >= t.clip * 0.999) + (abs(b_after) >= t.clip * 0.999))
        close(terms["clip_share"], share / (D + 1))
    close(critic.w, w_after)
    close(critic.b, b_after)
    close(generator.a, setup["a"])  # the critic's update leaves the generator alone


@pytest.mark.parametrize("name", SEPARATE)
def test_generator_update_matches_the_hand_derived_loss_and_gradient(name, setup):
    t = CONFIGS[name]
    critic, generator, c_opt, g_opt = nets(setup)
    real, z = tensors(setup)
    terms, ok = step_of(t, critic, generator, c_opt, g_opt).generator_update(z, real)
    loss, da = generator_by_hand(t, setup)
    assert ok and critic.training
    close(terms["g_loss"], loss)
    close(generator.a, setup["a"] - da)
    close(critic.w, setup["w"])  # the generator's update leaves the critic alone
    close(critic.b, setup["b"])


@pytest.mark.parametrize("name", SHARED)
def test_shared_step_takes_both_gradients_before_either_network_moves(name, setup):
    t = CONFIGS[name]
    critic, generator, c_opt, g_opt = nets(setup)
    real, z = tensors(setup)
    terms, ok = step_of(t, critic, generator, c_opt, g_opt).shared_update(real, z, ALPHA)
    c_loss, dw, db, penalty, _, _ = critic_by_hand(t, setup)
    g_loss, da = generator_by_hand(t, setup)  # against the critic as it was before the step
    assert ok and critic.training
    close(terms["d_loss"], c_loss)
    close(terms["gp"], penalty)
    close(terms["g_loss"], g_loss)
    close(critic.w, setup["w"] - dw)
    close(critic.b, setup["b"] - db)
    close(generator.a, setup["a"] - da)


def test_the_seed_penalty_is_the_inference_mode_one():
    """The tutorial's Keras code called the critic without training=True for the penalty:
    (2 * 3 - 1)^2 = 25 here, against (3 - 1)^2 = 4 for a penalty pass in training mode."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=D)
    s = dict(w=w * 3 / np.linalg.norm(w), b=0.0, a=rng.normal(size=(D, Z)),
             real=rng.uniform(-1, 1, (N, D)), z=rng.normal(size=(N, Z)))
    for name, expected in (("seed", 25.0), ("wgan-gp", 4.0)):
        t = get_preset(name).train
        critic, generator, c_opt, g_opt = nets(s)
        real, z = tensors(s)
        step = step_of(t, critic, generator, c_opt, g_opt)
        if t.shared_step:
            terms, _ = step.shared_update(real, z, ALPHA)
        else:
            terms, _ = step.critic_update(real, z, ALPHA)
        assert terms["gp"].item() == pytest.approx(expected, rel=1e-12), name


def test_penalty_pass_leaves_a_critic_in_inference_mode_there():
    """The eval switch restores whatever mode the critic had, not always training mode."""
    t = get_preset("seed").train
    rng = np.random.default_rng(2)
    s = dict(w=np.full(D, 1.5), b=0.0, a=rng.normal(size=(D, Z)),
             real=rng.uniform(-1, 1, (N, D)), z=rng.normal(size=(N, Z)))
    critic, generator, c_opt, g_opt = nets(s)
    critic.eval()
    step_of(t, critic, generator, c_opt, g_opt).critic_update(*tensors(s), ALPHA)
    assert not critic.training

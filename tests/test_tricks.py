"""The tricks and classic variants train end to end on CPU: tiny nets, synthetic data."""

import json
import math

import pytest
import torch

from wganlab.cli import main
from wganlab.config import Config, TrainConfig
from wganlab.models import Critic, Generator, MinibatchDiscrimination
from wganlab.training import steps

ARTIFACTS = ("config.json", "run.json", "metrics.jsonl", "learning_curve.png",
             "samples_by_epoch.png", "report.html", "samples/epoch-001.png")


def train_rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "g_loss" in r]


def finite(row, keys):
    return all(isinstance(row[k], float) and math.isfinite(row[k]) for k in keys)


# Each variant with the term that shows it is really on, and the tricks it turns on.
FM, MBD = "feature_matching", "minibatch_discrimination"
VARIANTS = {
    "wgan-clip": (["--preset", "wgan"], "clip_share", ()),
    "sngan-hinge": (["--preset", "sngan"], None, ()),
    "minibatch-discrimination": (["--preset", "wgan-gp", "--minibatch-discrimination"], "gp",
                                 (MBD,)),
    "feature-matching": (["--preset", "wgan-gp", "--feature-matching"], "gp", (FM,)),
    "dcgan-minibatch": (["--preset", "dcgan", "--minibatch-discrimination"], None, (MBD,)),
    "seed-feature-matching": (["--preset", "seed", "--feature-matching"], "gp", (FM,)),
    "hinge-feature-matching": (["--preset", "sngan", "--feature-matching"], None, (FM,)),
}


@pytest.fixture
def trick_calls(monkeypatch):
    """Counts the calls of the feature-matching loss and of the minibatch layer."""
    calls = {FM: 0, MBD: 0}
    loss, layer = steps.losses.feature_matching, MinibatchDiscrimination.forward

    def counted_loss(*args):
        calls[FM] += 1
        return loss(*args)

    def counted_layer(self, x):
        calls[MBD] += 1
        return layer(self, x)

    monkeypatch.setattr(steps.losses, "feature_matching", counted_loss)
    monkeypatch.setattr(MinibatchDiscrimination, "forward", counted_layer)
    return calls


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_trains_end_to_end(name, tmp_path, tiny_flags, trick_calls):
    flags, extra, tricks = VARIANTS[name]
    run = tmp_path / name
    assert main(["train", *flags, "--steps", "3", "--log-every", "3", "--out", str(run),
                 *tiny_flags]) == 0
    for artifact in ARTIFACTS:
        assert (run / artifact).stat().st_size > 0, artifact
    rows = train_rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    keys = ["g_loss", "d_loss", "wasserstein", "c_grad_norm", "g_grad_norm"]
    keys += [extra] if extra else []
    assert all(finite(r, keys) for r in rows), rows
    assert "diversity" in rows[-1] and rows[-1]["diversity"] > 0
    # The tricks really ran, and only when asked for: one feature-matching loss per generator
    # update, and the minibatch layer in the critic's forward passes and checkpoint.
    assert trick_calls[FM] == (3 if FM in tricks else 0)
    assert (trick_calls[MBD] > 0) == (MBD in tricks)
    critic = _state(run)["critic"]
    assert ("mbd.T" in critic) == (MBD in tricks)
    if FM in tricks:
        assert all(r["g_loss"] >= 0 for r in rows)  # a squared distance


def test_presets_resolve_to_the_papers_settings(tmp_path, capsys):
    assert main(["train", "--preset", "wgan", "--dry-run", "--out", str(tmp_path / "a")]) == 0
    wgan = json.loads(capsys.readouterr().out)["train"]
    assert (wgan["optimizer"], wgan["c_lr"], wgan["clip"], wgan["n_critic"]) == \
        ("rmsprop", 5e-5, 0.01, 5)
    assert main(["train", "--preset", "sngan", "--dry-run", "--out", str(tmp_path / "b")]) == 0
    sngan = json.loads(capsys.readouterr().out)
    assert sngan["train"]["loss"] == "hinge" and sngan["model"]["spectral_norm"] is True


def test_weight_clipping_holds_every_critic_weight_at_the_bound():
    torch.manual_seed(0)
    cfg = Config(train=TrainConfig(loss="wasserstein", penalty="none", clip=0.01,
                                   optimizer="rmsprop"))
    generator = Generator(z_dim=8, image_shape=(1, 8, 8), n_filters=8, n_blocks=1)
    critic = Critic(image_shape=(1, 8, 8), n_filters=4, n_blocks=1, norm="none", dropout=0.0)
    opt = torch.optim.RMSprop(critic.parameters(), lr=5e-5)
    step = steps.Step(cfg, generator, critic, None, opt, steps.HostCheck("stop"))
    terms, ok = step.critic_update(torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 8), None)
    assert ok
    assert max(p.abs().max().item() for p in critic.parameters()) <= 0.01
    # Glorot weights start far above 0.01, so most land exactly on the bound.
    at_bound = sum((p.abs() >= 0.01 * 0.999).sum().item() for p in critic.parameters())
    total = sum(p.numel() for p in critic.parameters())
    assert terms["clip_share"].item() == pytest.approx(at_bound / total)
    assert 0.5 < terms["clip_share"].item() <= 1.0


class NaNOnce:
    """Wraps a loss so that its n-th call returns NaN: a skipped step, made to order."""

    def __init__(self, loss, n):
        self.loss, self.n, self.calls = loss, n, 0

    def __call__(self, *args):
        self.calls += 1
        value = self.loss(*args)
        return value * float("nan") if self.calls == self.n else value


@pytest.mark.parametrize("nan_call", [2, 5])  # a middle and the last critic update of step 1
def test_skipped_critic_update_with_clipping_keeps_training(nan_call, tmp_path, tiny_flags,
                                                            monkeypatch, capsys):
    critic_loss, generator_loss = steps.losses.LOSSES["wasserstein"]
    monkeypatch.setitem(steps.losses.LOSSES, "wasserstein",
                        (NaNOnce(critic_loss, nan_call), generator_loss))
    run = tmp_path / "run"
    assert main(["train", "--preset", "wgan", "--steps", "2", "--on-nan", "skip",
                 "--out", str(run), *tiny_flags]) == 0
    assert "Skipped 1 steps" in capsys.readouterr().out
    rows = train_rows(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all("clip_share" in r for r in rows)
    assert max(p.abs().max().item() for p in _critic_weights(run)) <= 0.01


def _state(run):
    from wganlab.base import checkpoint

    return torch.load(checkpoint.list_checkpoints(run)[0], weights_only=True)


def _critic_weights(run):
    return [v for k, v in _state(run)["critic"].items() if v.is_floating_point()
            and "running" not in k]

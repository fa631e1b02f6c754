"""A run with augmentation (auto or fixed p, xflip, a --max-images subset), stopped and
resumed, equals the run that never stopped, bit for bit: the augmentations come from their own
stream, which is in every checkpoint with p and its heuristic. And with p = 0 an augmented run
is the plain run: its draws never move z or the penalty's alphas."""

import json

import pytest
import torch

from wganlab.training import augmenting

from .runs import assert_same_state, compare_rows, loss_rows, state_at, stop_and_resume, train_argv

# Target -1: every reading "overfits", so p must move; at a speed that is not the default, so
# the flag must reach the loop.
SPEED = 5_000
AUGMENT = ("--augment", "translation,cutout,colour", "--augment-p", "auto",
           "--augment-target", "-1", "--augment-speed", str(SPEED), "--xflip",
           "--max-images", "512", "--log-every", "2")
END = 12  # two epochs: 512 images at batch 16 are 32 batches, 6 steps of n_critic 5


@pytest.mark.parametrize("conditional", ["none", "projection"])
def test_resume_with_auto_augmentation_equals_straight_run(conditional, cli, tmp_path):
    # Stopped mid-epoch and mid-interval of p's adjustments; a conditional critic scores
    # the held-out images with their classes.
    straight, want = stop_and_resume(cli, tmp_path, END, *AUGMENT,
                                     "--conditional", conditional)
    rows = loss_rows(straight)
    # Not vacuous: p moved (3 adjustments of 4 steps x 5 x 16 images) and was logged.
    p = 3 * 4 * 5 * 16 / SPEED
    assert SPEED != augmenting.IMAGES_TO_ONE
    assert torch.allclose(want["augment"]["p"], torch.tensor(p))
    logged = [r["augment_p"] for r in rows if "augment_p" in r]
    assert len(logged) == END // 2 and logged[-1] == float(want["augment"]["p"])
    info = json.loads((straight / "run.json").read_text())
    assert info["max_images"] == 512 and info["heldout_images"] == 512
    assert info["n_images"] == 512 and info["subset_seed"] == 1


def test_p_adapts_every_augment_interval_steps_by_the_images_shown_since(cli, tmp_path):
    run = tmp_path / "run"
    flags = [f for f in AUGMENT if f not in ("--log-every", "2")] + [
        "--log-every", "1", "--augment-interval", "3"]
    code, _, err = cli(*train_argv("wgan-gp", run, 7, *flags))
    assert code == 0, err
    logged = [r["augment_p"] for r in loss_rows(run)]
    # Read after steps 3 and 6, each time moving p by 3 steps x 5 critic batches x 16 images.
    step = 3 * 5 * 16 / SPEED
    assert logged == pytest.approx([0, 0, step, step, step, 2 * step, 2 * step])


def test_resume_with_a_fixed_p_equals_straight_run(cli, tmp_path):
    # Nothing adapts, but the stream must be saved: a resumed run that started it afresh
    # would draw the first steps' augmentations again.
    straight, want = stop_and_resume(cli, tmp_path, END, "--augment", "translation,cutout",
                                     "--augment-p", "0.5", "--max-images", "512")
    assert len(want["augment"]["streams"]) == 1 and float(want["augment"]["p"]) == 0.5
    # p is logged beside each heuristic reading, so the health rule knows the run augments.
    readings = [r for r in loss_rows(straight) if "overfit" in r]
    assert readings and all(r["augment_p"] == 0.5 for r in readings)


def test_p_zero_is_the_plain_run(cli, tmp_path):
    plain, zero = tmp_path / "plain", tmp_path / "zero"
    for run, flags in ((plain, ()), (zero, ("--augment", "translation,cutout,colour",
                                            "--augment-p", "0"))):
        code, _, err = cli(*train_argv("wgan-gp", run, END, *flags))
        assert code == 0, err
    compare_rows(loss_rows(zero), loss_rows(plain))
    got = state_at(zero, END)
    fresh = torch.Generator().manual_seed(augmenting.STREAM_SEED + 1).get_state()
    assert not torch.equal(got.pop("augment")["streams"][0], fresh)  # it did draw
    assert_same_state(got, state_at(plain, END))

"""The ensemble contract: member k of `--ensemble N` after S steps is the single run seeded
with member k's seed (weights, BatchNorm statistics, Adam moments, EMA), to the float32
tolerances that tests/ensemble_compare.py states and explains, and bit for bit when the
members run one after another; and so after a resume.

Presets: seed (BatchNorm and dropout in the critic, the shared step, Keras's Adam), wgan-gp
(a layer-norm critic, five critic updates) and fast (layer norm, with an EMA generator).
Dropout masks are compared exactly: each member draws them from its own stream, in the
state its single run's global stream has after initialising (ensemble.py).

What each member draws or is given beyond that is its own too, and compared the same way:
augmentations and flips (from its noise stream), --augment-p auto's p and heuristic (from
its own critic, training and held-out images), its --max-images subset (drawn by its seed),
and, for conditional models, its classes (from its own data order) and fixed-z class grid.
"""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ensemble_compare import assert_member_is_single, same
from tiny import no_pictures, train_argv
from wganlab.base import checkpoint
from wganlab.cli import main
from wganlab.ensemble import member_state

STEPS = 2
SEEDS = (3, 8)
CASES = {"seed": (), "wgan-gp": (), "fast": ("--ema-decay", "0.9")}
# The seed preset's rounding grows fast from the second step (see ensemble_compare.py).
STEPS_OF = {"seed": 1, "wgan-gp": STEPS, "fast": STEPS}


def newest(run) -> dict:
    """The run's newest checkpoint, loaded."""
    return checkpoint.load(checkpoint.list_checkpoints(run)[0])


def ensemble(out, preset: str, steps: int, *extra) -> dict:
    """Train a two-member tiny ensemble of `preset`; its newest checkpoint."""
    seeds = ["--seeds", *map(str, SEEDS)]
    # Stacked unless told otherwise (the default on the CPU runs members one after another).
    vmap = [] if "--no-ensemble-vmap" in extra else ["--ensemble-vmap"]
    with no_pictures():  # an ensemble's figures and report: tests/test_ensemble_outputs.py
        assert main(train_argv(preset, out, steps, "--ensemble", "2", *seeds, *vmap,
                               *extra)) == 0
    return newest(out)


@pytest.mark.slow
@pytest.mark.parametrize("preset", CASES)
def test_member_k_is_the_single_run_of_its_seed(preset, tiny_run, tmp_path):
    steps = STEPS_OF[preset]
    ens = ensemble(tmp_path / "ens", preset, steps, *CASES[preset])
    for k, seed in enumerate(SEEDS):
        single = newest(tiny_run(preset, steps, "--seed", seed, *CASES[preset]))
        assert_member_is_single(ens, k, len(SEEDS), single)


@pytest.mark.slow
def test_members_run_one_after_another_are_their_single_runs_bit_for_bit(tiny_run, tmp_path):
    ens = ensemble(tmp_path / "ens", "seed", STEPS, "--no-ensemble-vmap")
    for k, seed in enumerate(SEEDS):
        single = newest(tiny_run("seed", STEPS, "--seed", seed))
        assert_member_is_single(ens, k, len(SEEDS), single, exact=True)


@pytest.mark.slow
def test_members_really_differ(tmp_path):
    ens = ensemble(tmp_path / "ens", "wgan-gp", 1)
    first, second = (member_state(ens["generator"], k, 2) for k in range(2))
    # Every randomly initialised weight (BatchNorm's start at 1 and 0 in every member).
    assert all(not torch.equal(first[n], second[n]) for n in first if first[n].dim() >= 2)
    z = ens["fixed_z"]
    assert z.shape[0] == 2 * 64 and not torch.equal(z[:64], z[64:])


@pytest.mark.slow
def test_seed_plus_k_without_seeds(tiny_run, tmp_path):
    out = tmp_path / "ens"
    with no_pictures():
        assert main(train_argv("wgan-gp", out, 1, "--ensemble", "2", "--seed", "5")) == 0
    single = newest(tiny_run("wgan-gp", 1, "--seed", "6"))
    assert_member_is_single(newest(out), 1, 2, single)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["seed", "fast"])  # looped, and stacked with an EMA
def test_resumed_ensemble_is_the_straight_one_and_still_the_single_runs(preset, tiny_run,
                                                                         tmp_path):
    extra = (*CASES[preset], *(["--no-ensemble-vmap"] if preset == "seed" else []))
    straight = ensemble(tmp_path / "straight", preset, STEPS, *extra)
    ensemble(tmp_path / "resumed", preset, 1, *extra)
    resumed = ensemble(tmp_path / "resumed", preset, STEPS, "--resume", *extra)
    for key in ("generator", "critic", "g_optimizer", "c_optimizer", "fixed_z", "ema"):
        assert same(straight.get(key), resumed.get(key)), key
    for k, seed in enumerate(SEEDS):
        single = newest(tiny_run(preset, STEPS, "--seed", seed, *CASES[preset]))
        assert_member_is_single(resumed, k, 2, single, exact=preset == "seed")
    assert same(straight["member_noise"], resumed["member_noise"])
    assert same(straight["member_dropout"], resumed["member_dropout"])



@pytest.mark.slow
@pytest.mark.parametrize("preset, extra", [
    ("dcgan", ()), ("wgan", ()), ("sngan", ("--no-ensemble-vmap",)),
    ("fast", ("--feature-matching", "--minibatch-discrimination", "--penalty", "r1"))])
def test_every_recipe_trains_as_an_ensemble(preset, extra, tmp_path):
    ens = ensemble(tmp_path / "ens", preset, 1, *extra)
    first, second = (member_state(ens["generator"], k, 2) for k in range(2))
    assert all(torch.isfinite(v).all() for v in first.values() if v.is_floating_point())
    assert not torch.equal(first["project.0.weight"], second["project.0.weight"])


# Looped members with the plain (foreach) Adam are their single runs bit for bit; the fused
# CPU Adam rounds a stacked tensor's elements differently from a member's own tensor's. The
# stacked case uses the plain Adam too, so both cases share their single runs.
PLAIN_ADAM = "--no-fused-optimizer"
OWN = {
    "augment+xflip": ("--augment", "translation,cutout,colour", "--augment-p", "0.5",
                      "--xflip"),
    "auto+subset": ("--augment", "translation,cutout", "--augment-p", "auto",
                    "--max-images", "200"),
    "acgan": ("--conditional", "acgan"),
    "projection": ("--conditional", "projection"),
    # The heuristic scores each member's held-out images with their classes.
    "projection+auto+subset": ("--conditional", "projection", "--augment", "translation",
                               "--augment-p", "auto", "--max-images", "200"),
}


# Stacked: one case (the draws are outside the networks; the labels go through them).
@pytest.mark.slow
@pytest.mark.parametrize("case, looped", [(c, True) for c in OWN] + [("projection", False)])
def test_members_draw_augment_and_condition_as_their_single_runs(case, looped, tiny_run,
                                                                 tmp_path):
    loop = ("--no-ensemble-vmap",) if looped else ()
    steps = 5  # --augment-p auto adapts p after step 4
    ens = ensemble(tmp_path / "ens", "fast", steps, *loop, PLAIN_ADAM, *OWN[case])
    for k, seed in enumerate(SEEDS):
        single_run = tiny_run("fast", steps, "--seed", seed, PLAIN_ADAM, *OWN[case])
        single = newest(single_run)
        assert_member_is_single(ens, k, len(SEEDS), single, exact=looped)
        if "augment" in single:  # the member's own p, heuristic and augmentation stream
            for key in ("p", "overfit"):
                assert torch.equal(ens["augment"][key][k], single["augment"][key]), key
            assert torch.equal(ens["augment"]["streams"][k], single["augment"]["streams"][0])
        if case == "acgan":  # its fixed-z class grid is its single run's
            grid = tmp_path / "ens" / "samples" / "members" / f"epoch-001-m{k}.png"
            assert np.array_equal(np.asarray(Image.open(grid)), np.asarray(
                Image.open(single_run / "samples" / "epoch-001.png")))
    if case.endswith("auto+subset"):
        assert abs(float(ens["augment"]["overfit"][0])) > 0  # a measured heuristic
        run = json.loads((tmp_path / "ens" / "run.json").read_text())
        assert run["subset_seed"] == list(SEEDS) and run["n_images"] == 200


def test_each_members_fixed_z_asks_for_the_classes_its_single_run_asks():
    from wganlab.config import apply_overrides, get_preset
    from wganlab.ensemble import member_config
    from wganlab.training.state import TrainState

    cfg = apply_overrides(get_preset("fast-acgan"), {
        "model": {"g_filters": 8, "c_filters": 4, "z_dim": 8, "image_shape": (1, 8, 8),
                  "class_names": tuple("abcdefghij")},
        "train": {"ensemble": 2, "seeds": SEEDS}})
    members = TrainState.build(cfg, torch.device("cpu"))
    for k in range(2):
        single = TrainState.build(member_config(cfg, k), torch.device("cpu"))
        assert torch.equal(members.fixed_z.unflatten(0, (2, -1))[k], single.fixed_z)
        assert torch.equal(members.fixed_labels.unflatten(0, (2, -1))[k], single.fixed_labels)


def test_members_are_batched_by_default_on_cuda_only(monkeypatch):
    """The default decides per device (CPU: one after another, measured faster), driven with
    real torch.device objects; an explicit --ensemble-vmap / --no-ensemble-vmap wins, and
    spectral norm (no vmap rule) runs looped by default."""
    from wganlab.config import apply_overrides, get_preset
    from wganlab.ensemble import stacked
    from wganlab.training.runner import applicable

    cfg = apply_overrides(get_preset("fast"), {"train": {"ensemble": 2}})
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert stacked(cfg, cuda) and not stacked(cfg, cpu)
    assert stacked(cfg, torch.device("cuda"))  # "cuda" and "cuda:0" alike
    assert applicable(cfg, cuda)[0].ensemble_vmap is True  # what run.json records
    assert applicable(cfg, cpu)[0].ensemble_vmap is False
    told = apply_overrides(cfg, {"speed": {"ensemble_vmap": True}})
    assert stacked(told, cpu)
    assert not stacked(apply_overrides(cfg, {"speed": {"ensemble_vmap": False}}), cuda)
    assert not stacked(apply_overrides(get_preset("sngan"), {"train": {"ensemble": 2}}), cuda)

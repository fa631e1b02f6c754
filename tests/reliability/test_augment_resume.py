"""A run with augmentation (auto p, xflip, a --max-images subset), stopped and resumed,
equals the run that never stopped, bit for bit: the augmentations come from the run's noise
stream, and p with its heuristic is in every checkpoint."""

import json

import torch

from wganlab.training import augmenting

from .runs import loss_rows, stop_and_resume

# Target -1: every reading "overfits", so p must move; at a speed that is not the default, so
# the flag must reach the loop.
SPEED = 5_000
AUGMENT = ("--augment", "translation,cutout,colour", "--augment-p", "auto",
           "--augment-target", "-1", "--augment-speed", str(SPEED), "--xflip",
           "--max-images", "512", "--log-every", "2")
END = 12  # two epochs: 512 images at batch 16 are 32 batches, 6 steps of n_critic 5


def test_resume_with_auto_augmentation_equals_straight_run(cli, tmp_path):
    # Stopped mid-epoch and mid-interval of p's adjustments.
    straight, want = stop_and_resume(cli, tmp_path, END, *AUGMENT)
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

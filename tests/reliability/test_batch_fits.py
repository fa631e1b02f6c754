"""Defect 3: a batch x n_critic larger than the data set is a clear error naming --batch-size
and n_critic, before any training; no step ever gathers an empty batch."""

import numpy as np
import pytest
from PIL import Image

from wganlab.config import get_preset
from wganlab.errors import ConfigError
from wganlab.training.schedule import steps_per_epoch

from .runs import TINY


def test_synthetic_with_batch_256(tmp_path, cli):
    """1024 images; wgan-gp draws 5 batches of 256 = 1280 images per generator step."""
    run = tmp_path / "run"
    flags = [a if a != "16" else "256" for a in TINY]
    code, _, err = cli("train", "--preset", "wgan-gp", *flags, "--out", run, "--steps", 2)
    assert code == ConfigError.exit_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "--batch-size" in lines[0] and "n_critic" in lines[0] and "1024" in lines[0]
    assert not (run / "checkpoints").exists() and not (run / "metrics.jsonl").exists()


def test_a_small_folder(tmp_path, cli):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(20):
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(folder / f"{i}.png")
    flags = [a if a != "16" else "8" for a in TINY]
    flags[flags.index("synthetic")] = f"folder:{folder}"
    code, _, err = cli("train", "--preset", "wgan-gp", *flags, "--out", tmp_path / "run",
                       "--steps", 2)
    assert code == ConfigError.exit_code and "--batch-size" in err and "20" in err, err


def test_the_schedule_never_plans_an_empty_batch():
    cfg = get_preset("wgan-gp")
    cfg.train.batch_size = 100
    assert steps_per_epoch(500, cfg) == 1  # exactly 5 batches
    with pytest.raises(ConfigError, match="--batch-size"):
        steps_per_epoch(499, cfg)
    seed = get_preset("seed")  # the shared step draws one batch
    seed.train.batch_size = 100
    assert steps_per_epoch(100, seed) == 1
    with pytest.raises(ConfigError, match="--batch-size"):
        steps_per_epoch(99, seed)

import json

import numpy as np
import pytest
import torch
from PIL import Image

from wganlab.base import checkpoint
from wganlab.base.images import make_grid, to_uint8
from wganlab.cli import main
from wganlab.config import Config
from wganlab.models import build_models

ROW_KEYS = {"step", "epoch", "time", "g_loss", "d_loss", "d_real", "d_fake", "gp", "wasserstein"}


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_train_writes_every_artifact(tmp_path, tiny_flags, capsys):
    run = tmp_path / "run"
    # synthetic: 1024 images / batch 16 = 64 batches; n_critic 5 -> 12 steps per epoch
    assert main(["train", "--preset", "wgan-gp", "--steps", "14", "--out", str(run),
                 *tiny_flags]) == 0
    out = capsys.readouterr()
    assert "Epoch   1 | ET " in out.out + out.err and "Avg Losses >> G/D" in out.out + out.err

    cfg = json.loads((run / "config.json").read_text())
    assert cfg["preset"] == "wgan-gp" and cfg["model"]["image_shape"] == [1, 28, 28]
    assert cfg["train"]["n_critic"] == 5 and cfg["model"]["critic_norm"] == "layer"

    logged = rows(run)
    assert [r["step"] for r in logged] == list(range(1, 15))
    assert all(ROW_KEYS <= set(r) for r in logged)
    assert [r["epoch"] for r in logged] == [1] * 12 + [2] * 2
    assert all(abs(r["wasserstein"] - (r["d_real"] - r["d_fake"])) < 1e-6 for r in logged)

    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch-001.png",
                                                                   "epoch-002.png"]
    grid = Image.open(run / "samples" / "epoch-001.png")
    assert grid.size == (2 + 8 * 30, 2 + 8 * 30)  # 8x8 tiles of 28 px, 2 px apart
    # The grid is the epoch-1 generator's images of the fixed z, in inference mode.
    state = torch.load(run / "checkpoints" / "step-00000012.pt", weights_only=True)
    generator, _ = build_models(Config.from_dict(state["config"]).model, (1, 28, 28))
    generator.load_state_dict(state["generator"])
    with torch.no_grad():
        images = to_uint8(generator.eval()(state["fixed_z"]))
    assert np.array_equal(np.asarray(grid), make_grid(images, 8)[..., 0])
    for name in ("learning_curve.png", "samples_by_epoch.png"):
        figure = np.asarray(Image.open(run / name).convert("L"))
        assert min(figure.shape) > 200 and figure.std() > 10, name  # drawn, not blank

    saved = checkpoint.list_checkpoints(run)
    assert [p.name for p in saved] == ["step-00000014.pt", "step-00000012.pt"]
    state = torch.load(saved[0], weights_only=True)
    assert state["step"] == 14 and state["epoch"] == 1
    assert {"generator", "critic", "g_optimizer", "c_optimizer", "rng", "fixed_z",
            "config", "version"} <= set(state)
    assert state["fixed_z"].shape == (64, cfg["model"]["z_dim"])


@pytest.mark.slow
def test_resume_continues_the_counters(tmp_path, tiny_flags):
    run = tmp_path / "run"
    assert main(["train", "--preset", "wgan-gp", "--steps", "3", "--out", str(run),
                 *tiny_flags]) == 0
    assert main(["train", "--resume", "--steps", "5", "--out", str(run), "--no-progress"]) == 0
    assert [r["step"] for r in rows(run)] == [1, 2, 3, 4, 5]
    assert checkpoint.list_checkpoints(run)[0].name == "step-00000005.pt"
    # A finished run resumed again does nothing more.
    assert main(["train", "--resume", "--steps", "5", "--out", str(run), "--no-progress"]) == 0
    assert len(rows(run)) == 5


def test_existing_run_directory_needs_resume(tmp_path, tiny_flags, capsys):
    run = tmp_path / "run"
    assert main(["train", "--steps", "1", "--out", str(run), *tiny_flags]) == 0
    assert main(["train", "--steps", "1", "--out", str(run), *tiny_flags]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["train", "--resume", "--steps", "2", "--out", str(run), "--z-dim", "7"]) == 2


def test_seed_preset_shared_step_runs(tmp_path, tiny_flags):
    run = tmp_path / "seed"
    assert main(["train", "--preset", "seed", "--steps", "2", "--out", str(run), *tiny_flags]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["shared_step"] and cfg["train"]["gp_eval_mode"]
    assert cfg["model"]["critic_norm"] == "batch" and cfg["train"]["z_dist"] == "uniform"
    assert len(rows(run)) == 2


def test_dry_run_prints_the_resolved_config(tmp_path, capsys):
    assert main(["train", "--preset", "seed", "--dry-run", "--g-lr", "0.001",
                 "--out", str(tmp_path / "x")]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["train"]["g_lr"] == 0.001 and cfg["train"]["c_lr"] == 2e-4
    assert cfg["train"]["betas"] == [0.9, 0.999] and cfg["train"]["epochs"] == 100
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_tensorboard_scalars(tmp_path, tiny_flags):
    import pytest

    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "tb"
    assert main(["train", "--steps", "2", "--log-every", "1", "--tensorboard", "--out", str(run),
                 *tiny_flags]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/g_loss")] == [1, 2]

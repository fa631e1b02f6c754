"""The lean loop: when it syncs with the device, what it prints, how it shows time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wganlab.cli.main import finished_message
from wganlab.config import apply_overrides, get_preset
from wganlab.training import logbook, loop
from wganlab.training.progress import Progress
from wganlab.training.runtime import Clock
from wganlab.training.schedule import steps_per_epoch


def tiny_config(out: Path, steps: int):
    return apply_overrides(get_preset("wgan-gp"), {
        "model": {"g_filters": 16, "c_filters": 8},
        "train": {"batch_size": 16, "steps": steps, "n_critic": 2},
        "run": {"dataset": "synthetic", "out": str(out), "progress": False}})


def test_rows_reach_the_host_only_at_log_steps_epoch_ends_and_the_end(tmp_path, monkeypatch):
    flushed_at = []
    real_flush = logbook.StepLog.flush

    def counting(self, step):
        if self.pending:
            flushed_at.append(step)
        return real_flush(self, step)

    monkeypatch.setattr(logbook.StepLog, "flush", counting)
    cfg = tiny_config(tmp_path / "run", steps=13)
    cfg.run.log_every = 5
    result = loop.train(cfg)
    assert result.step == 13
    per_epoch = steps_per_epoch(1024, cfg)  # synthetic: 1024 images -> 32 steps
    assert per_epoch == 32
    expected = sorted({s for s in range(1, 14) if s % 5 == 0 or s % per_epoch == 0} | {13})
    assert flushed_at == expected
    rows = [r for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
            if '"g_loss"' in r]
    assert len(rows) == 13  # every step logged, though only synced at those steps


def test_progress_by_time_shows_spent_and_left():
    clock = Clock(0.0, minutes=2)
    clock.started -= 30  # 30 s into a 2-minute budget
    progress = Progress(None, 7, clock, enabled=True)  # a disabled bar counts nothing
    progress.advance(8)
    assert progress.bar.n == 30 and progress.bar.total == 120
    text = progress.bar.postfix
    assert "step 8" in text and "0:30 of 2:00" in text and "1:30 left" in text
    progress.close()


def test_clock_leaves_evaluation_out_of_training_time():
    clock = Clock(elapsed_before=100.0, minutes=1)
    clock.pause(50.0)
    assert clock.training_seconds() == pytest.approx(50.0, abs=1.0)
    assert not clock.out_of_time()
    clock.started = time.time() - 61
    assert clock.out_of_time()


def test_finished_message_names_pictures_report_fid_and_next_commands():
    result = loop.TrainResult(Path("runs/x"), 40, last_eval={
        "fid": 123.456, "step": 40, "n_fake": 500, "modes_covered": 9})
    text = finished_message(result)
    for part in ("runs/x/report.html", "runs/x/samples_by_epoch.png", "FID 123.5 at step 40",
                 "9 of 10 classes", "wganlab train --out runs/x --resume",
                 "wganlab generate runs/x", "wganlab evaluate runs/x"):
        assert part in text
    assert "lowest FID" not in text  # no best row given
    result.best_eval = {"fid": 98.76, "step": 20}
    assert "lowest FID 98.8 at step 20: its checkpoint is kept" in finished_message(result)
    result.best_eval = result.last_eval
    assert "lowest FID" not in finished_message(result)  # the last is the best


def test_figures_are_redrawn_at_epoch_ends_at_most_every_redraw_seconds(tmp_path, monkeypatch):
    """A 500-image run ends an epoch every 15 steps; redrawing each time cost a fifth of it."""
    from wganlab.training import outputs

    drawn, now, said = [], [0.0], []
    monkeypatch.setattr(outputs, "redraw", lambda out: drawn.append(now[0]))
    summary = outputs.EpochSummary(tmp_path, said.append, redraw_seconds=30.0,
                                   clock=lambda: now[0])
    for epoch, t in enumerate([0.0, 10.0, 29.9, 30.0, 45.0, 59.9, 60.0, 200.0], start=1):
        now[0] = t
        summary.on_rows([{"g_loss": 1.0, "d_loss": 2.0, "d_real": -1.0, "d_fake": 1.0}])
        summary.end_epoch(epoch, t)
    assert drawn == [0.0, 30.0, 60.0, 200.0]
    assert len(said) == 8 and said[0].startswith("Epoch   1")  # the epoch line is never skipped

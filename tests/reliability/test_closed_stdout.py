"""Issue 21: `wganlab train ... | head -1`. A closed stdout ends printing, never training: the
run goes on, logs to its files and saves its final checkpoint and report as it would have.
Here stdout is a real pipe whose reader has gone, in this process."""

from __future__ import annotations

import os
import sys

from wganlab.base import checkpoint
from wganlab.cli import main

from .runs import train_argv


def closed_pipe():
    """A text stream on a pipe nobody reads: writing to it fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return os.fdopen(write, "w", buffering=1)


def test_training_outlives_a_closed_stdout(tmp_path, monkeypatch, single_thread):
    run = tmp_path / "run"
    stream = closed_pipe()
    monkeypatch.setattr(sys, "stdout", stream)
    try:
        # 14 steps: an epoch line at 12 (the first print), then the last steps and saves.
        code = main(train_argv("wgan-gp", run, 14, "--log-every", 1))
    finally:
        monkeypatch.undo()
        stream.close()
    assert code == 0
    assert [int(p.name[5:13]) for p in checkpoint.list_checkpoints(run)] == [14, 12]
    assert (run / "report.html").is_file()
    rows = [line for line in (run / "metrics.jsonl").read_text().splitlines() if "g_loss" in line]
    assert len(rows) == 14

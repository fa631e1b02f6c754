"""What a training run needs around the loop: signals and the metrics log."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

import torch

from ..base.files import atomic_write
from ..runfiles import metrics_lines


class StopSignals:
    """SIGINT/SIGTERM/SIGHUP ask the loop to stop after the current step and save; a second
    SIGINT stops now. A signal ignored when the process started stays ignored."""

    # SIGHUP: the terminal or ssh session closed; saving beats losing the steps since the
    # last checkpoint.
    CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        # os.write, not print: a handler may run in the middle of another write to stderr.
        name = signal.Signals(signum).name
        os.write(2, f"\nwganlab: {name}: finishing this step and saving a checkpoint "
                    "(Ctrl-C again stops at once)\n".encode())

    @property
    def exit_code(self) -> int | None:
        """130 after SIGINT, 143 after SIGTERM, 129 after SIGHUP; None before any arrives."""
        return None if self.received is None else self.CODES[self.received]

    def __enter__(self):
        for sig in self.CODES:
            if signal.getsignal(sig) == signal.SIG_IGN:
                # Ignored when we started (SIGINT for a script's background job, SIGHUP under
                # nohup): the user's shell chose that, and Python honours it too.
                continue
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def _plain(value):
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/Inf
    return value


class MetricsLog:
    """Appends one JSON object per line to metrics.jsonl; each line is flushed when written."""

    def __init__(self, path: Path, truncate_after_step: int | None = None):
        self.path = Path(path)
        if truncate_after_step is not None and self.path.exists():
            # On resume, drop lines from steps the checkpoint does not contain.
            keep = [line for line, row in metrics_lines(self.path)  # rows, checked
                    if row["step"] <= truncate_after_step]
            # Atomically: a kill or a full disk mid-rewrite must not cost the kept rows.
            text = "".join(k + "\n" for k in keep).encode()
            atomic_write(self.path, lambda f: f.write(text))
        self.file = open(self.path, "a", buffering=1)

    def write(self, row: dict) -> None:
        """Append a row as one JSON line; tensors become numbers, NaN and Inf strings."""
        try:
            self.file.write(json.dumps({k: _plain(v) for k, v in row.items()}) + "\n")
        except OSError as e:  # a full disk: say which file
            raise OSError(e.errno, f"could not write {self.path}: {e.strerror or e}") from e

    def close(self) -> None:
        """Close metrics.jsonl."""
        self.file.close()


class Clock:
    """Training seconds across resumes, less the time spent evaluating; --minutes is a budget
    for this process alone."""

    def __init__(self, elapsed_before: float = 0.0, minutes: float | None = None):
        now = time.time()
        self.start, self.started, self.minutes = now - elapsed_before, now, minutes

    def training_seconds(self) -> float:
        """Training seconds so far, earlier processes of a resumed run included."""
        return time.time() - self.start

    def this_process(self) -> float:
        """Training seconds in this process (what --minutes limits)."""
        return time.time() - self.started

    def pause(self, seconds: float) -> None:
        """Leave `seconds` (an evaluation) out of both counts."""
        self.start += seconds
        self.started += seconds

    def out_of_time(self) -> bool:
        """Whether this process has spent its --minutes."""
        return self.minutes is not None and self.this_process() >= self.minutes * 60

"""The per-step numbers of a run: kept on the device until logged, then written and watched.

`StepLog` holds each step's values as device tensors and turns them into rows only when the
loop asks (every --log-every steps, at epoch ends, before checkpoints and evaluations): that
is the one host synchronisation, so steps in between never wait for the device. The rows then
go to the objects in `watchers`: the health monitor and TensorBoard.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..config import Config
from ..errors import ConfigError, NonFiniteError
from ..metrics import health
from . import distributed
from .distributed import Shard
from .runtime import MetricsLog


class StepLog:
    """Pending step values -> rows in metrics.jsonl (rank 0), averaged over ranks."""

    def __init__(self, out: Path, cfg: Config, shard: Shard, mode: str, resumed_at: int):
        self.on_nan, self.mode, self.shard = cfg.run.on_nan, mode, shard
        self.file = MetricsLog(out / "metrics.jsonl", truncate_after_step=resumed_at) \
            if shard.is_main else None
        self.pending: list[tuple[dict, dict]] = []

    def add(self, meta: dict, terms: dict[str, torch.Tensor]) -> None:
        """Queue one step's row fields and device values until the next flush."""
        self.pending.append((meta, terms))

    def flush(self, step: int) -> tuple[list[dict], int]:
        """Every pending step as a row, and how many were skipped as non-finite; stops the
        run on a non-finite one unless skipping."""
        if not self.pending:
            return [], 0
        skipped = 0
        keys = sorted(self.pending[0][1])
        values = torch.stack([torch.stack([terms[k].float() for k in keys])
                              for _, terms in self.pending])
        values = distributed.mean_across(values, self.shard)
        rows = []
        for (meta, _), vals in zip(self.pending, values.cpu().tolist()):
            row = {**meta, **dict(zip(keys, vals))}
            if row.pop("nonfinite", 0.0):  # eager steps stopped already; graph steps stop here
                if self.on_nan == "stop":
                    raise NonFiniteError(_nonfinite_message(row, self.mode, step))
                skipped += 1
            row["wasserstein"] = row["d_real"] - row["d_fake"]
            self.write(row)
            rows.append(row)
        self.pending.clear()
        return rows, skipped

    def write(self, row: dict) -> None:
        """Append a row to metrics.jsonl (rank 0 only)."""
        if self.file is not None:
            self.file.write(row)

    def close(self) -> None:
        """Close metrics.jsonl (rank 0 only)."""
        if self.file is not None:
            self.file.close()


class HealthWatch:
    """The critic-health rules over logged rows; each kind of flag is reported once."""

    def __init__(self, log: StepLog, image_shape, say):
        self.log, self.say = log, say
        self.monitor = health.HealthMonitor.for_run(log.file.path, image_shape)

    def on_rows(self, rows: list[dict]) -> None:
        """Run the rules over new rows; log and print each new kind of flag."""
        for flag in self.monitor.observe(rows):
            self.log.write(flag.row())
            self.say(flag.line())


class TensorBoardScalars:
    """Losses and the Wasserstein estimate as TensorBoard scalars (with --tensorboard)."""

    KEYS = ("g_loss", "d_loss", "gp", "r1", "wasserstein")

    def __init__(self, out: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ConfigError("--tensorboard: needs the tensorboard extra "
                              "(pip install -e '.[tensorboard]')") from e
        self.writer = SummaryWriter(str(out / "tensorboard"))

    def on_rows(self, rows: list[dict]) -> None:
        """Write each row's KEYS as scalars at its step."""
        for row in rows:
            for k in self.KEYS:
                if k in row:
                    self.writer.add_scalar(f"train/{k}", row[k], row["step"])

    def add_image(self, images, step: int) -> None:
        """Write a sample grid (height x width x channels) at `step`."""
        self.writer.add_image("samples", images, step, dataformats="HWC")

    def close(self) -> None:
        """Flush and close the TensorBoard writer."""
        self.writer.close()


def _nonfinite_message(row: dict, mode: str, step: int) -> str:
    # NaN fails every comparison, so `not abs(v) < inf` catches NaN and both infinities.
    bad = [k for k, v in row.items() if isinstance(v, float) and not abs(v) < float("inf")]
    return (f"step {row['step']}: non-finite value in {', '.join(bad) or 'a gradient'}; "
            f"stopping at step {step} (use --on-nan skip to skip such steps; {mode} steps "
            "are checked with the metrics, every --log-every steps)")

"""What a run leaves behind as it goes: sample grids, checkpoints, the epoch line and plots,
and quality measurements. Each is a small object the loop calls; only rank 0 makes them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..base import checkpoint
from ..base.files import atomic_write
from ..base.images import grid_png, make_grid, to_uint8
from ..conditioning import asked_classes
from ..config import Config
from ..data import sample_z
from ..generate import class_grid_inputs
from ..models import eval_mode
from ..reporting.plots import redraw
from ..runfiles import best_evaluation
from .state import GRID_CLASSES, GRID_COLUMNS, TrainState


class SampleGrids:
    """samples/epoch-NNN.png: the fixed z through the generator in inference mode; for a
    conditional run one row per class (the first GRID_CLASSES), the first GRID_COLUMNS fixed z
    across, the same z down each column."""

    def __init__(self, out: Path, tensorboard=None):
        self.out, self.tensorboard = out, tensorboard

    def images(self, state: TrainState) -> torch.Tensor:
        """The fixed z through the sampling generator in inference mode, as uint8 images,
        (members, images, C, H, W): an ensemble's members each draw from their own fixed z."""
        # The EMA generator when the run keeps one.
        generator = state.sampler
        members = getattr(generator, "members", 1)
        with torch.no_grad(), eval_mode(generator):
            if state.fixed_labels is None:
                return to_uint8(generator(state.fixed_z)).unflatten(0, (members, -1))
            rows = list(range(min(generator.n_classes, GRID_CLASSES)))
            inputs = [class_grid_inputs(z[:GRID_COLUMNS], rows)
                      for z in state.fixed_z.unflatten(0, (members, -1))]
            z, labels = (torch.cat(x) for x in zip(*inputs))  # member-major
            return to_uint8(generator(z, labels)).unflatten(0, (members, -1))

    def save(self, state: TrainState, epoch: int) -> None:
        """Write samples/epoch-NNN.png (and the grid to TensorBoard when on). An ensemble's
        members each get samples/members/epoch-NNN-mK.png; epoch-NNN.png is member 0's."""
        members = self.images(state)
        if len(members) > 1:
            (self.out / "samples" / "members").mkdir(exist_ok=True)
            for k, grid in enumerate(members):
                data = grid_png(grid)
                atomic_write(self.out / "samples" / "members" / f"epoch-{epoch:03d}-m{k}.png",
                             lambda f, d=data: f.write(d))
        images = members[0]
        png = grid_png(images)
        if self.tensorboard is not None:
            self.tensorboard.add_image(make_grid(images), state.step)
        atomic_write(self.out / "samples" / f"epoch-{epoch:03d}.png", lambda f: f.write(png))


@torch.no_grad()
def member_samples(ensemble, n: int, z_dist: str, members: int, device) -> list[torch.Tensor]:
    """Each member's n uint8 images from the z that generate.sample(seed=0) draws for one
    model (the same z for every member), in inference mode."""
    rng = torch.Generator(device=device).manual_seed(0)
    z = sample_z(n, ensemble.z_dim, z_dist, generator=rng, device=device)
    with eval_mode(ensemble):
        images = torch.cat([ensemble(chunk.repeat(members, 1)).unflatten(0, (members, -1))
                            for chunk in z.split(500)], dim=1)
    return [to_uint8(x) for x in images]


class Checkpoints:
    """checkpoints/step-NNNNNNNN.pt with the full state; the newest --keep-last are kept,
    those at a multiple of --keep-every, and the one of the lowest FID so far (`keep`: a
    callable giving its step, or None)."""

    def __init__(self, out: Path, cfg: Config, per_epoch: int, keep=lambda: None):
        self.out, self.cfg, self.per_epoch, self.keep = out, cfg, per_epoch, keep
        self.keep_last, self.keep_every = cfg.run.keep_last, cfg.run.keep_every
        self.every = [n for n in (cfg.run.checkpoint_every, cfg.run.keep_every) if n]

    def due(self, step: int) -> bool:
        """Besides every epoch end: every --checkpoint-every and every --keep-every steps."""
        return any(step % n == 0 for n in self.every)

    def save(self, state: TrainState, training_seconds: float) -> None:
        """Save the full training state at this step, then prune (see checkpoint.prune)."""
        saved = state.to_checkpoint(self.cfg, self.per_epoch, training_seconds)
        checkpoint.save(saved, checkpoint.checkpoint_path(self.out, state.step))
        best = self.keep()
        checkpoint.prune(self.out, self.keep_last, self.keep_every,
                         () if best is None else (best,))


class EpochSummary:
    """The tutorial's per-epoch line, and the learning-curve and samples figures redrawn.

    Redrawing reads the whole metrics log and every epoch's grid, and draws two figures: about
    half a second on a CPU, and more as the run grows. With a small data set an epoch is a few
    steps, so redrawing at every epoch's end took a fifth of a 500-image run's time; the figures
    are redrawn at an epoch's end only when `redraw_seconds` have passed since the last drawing
    (the loop draws them once more when the run ends).
    """

    def __init__(self, out: Path, say, redraw_seconds: float = 30.0, clock=time.monotonic):
        self.out, self.say = out, say
        self.redraw_seconds, self.clock = redraw_seconds, clock
        self.rows: list[dict] = []
        self.drawn_at: float | None = None

    def on_rows(self, rows: list[dict]) -> None:
        """Collect the epoch's training rows for its line."""
        self.rows += rows

    def end_epoch(self, epoch: int, training_seconds: float) -> None:
        """Print the epoch's line (when it logged rows); redraw the figures when due."""
        if self.rows:
            self.say(epoch_line(epoch, training_seconds, self.rows))
        self.rows = []
        if self.drawn_at is None or self.clock() - self.drawn_at >= self.redraw_seconds:
            redraw(self.out)
            self.drawn_at = self.clock()  # after drawing: the gap is time spent training


def epoch_line(epoch: int, seconds: float, rows: list[dict]) -> str:
    """The tutorial's line; D-Real and D-Fake are its loss terms -E[D(x)] and E[D(G(z))]."""
    n = len(rows)
    g = sum(r["g_loss"] for r in rows) / n
    d = sum(r["d_loss"] for r in rows) / n
    real = -sum(r["d_real"] for r in rows) / n
    fake = sum(r["d_fake"] for r in rows) / n
    return (f"Epoch {epoch:3d} | ET {seconds / 60:.2f} min | Avg Losses >> G/D "
            f"{g:6.2f}/{d:6.2f} [D-Real: {real:6.2f} D-Fake: {fake:6.2f}]")


class Evaluation:
    """FID, KID and class coverage of --eval-n samples every --eval-every steps, as rows of
    metrics.jsonl and fid_curve.png; the time it takes is not training time."""

    KEYS = ("fid", "kid_mean", "precision", "recall", "coverage", "modes_covered",
            "class_kl_to_uniform", "n_fake", "n_real", "reference", "evaluator_sha256")
    CLASS_KEYS = ("class_accuracy", "class_accuracy_min", "fid_class_mean")  # conditional

    def __init__(self, out: Path, cfg: Config, log, say, device, watchers=()):
        self.out, self.cfg, self.log, self.say, self.device = out, cfg, log, say, device
        self.watchers = list(watchers)  # objects with on_rows(rows): the health monitor
        self.every = cfg.run.eval_every
        self.rows = [json.loads(line) for line in log.file.path.read_text().splitlines()
                     if '"eval": true' in line] if self.every else []

    def due(self, step: int) -> bool:
        """Every --eval-every steps (never when it is 0)."""
        return bool(self.every) and step % self.every == 0

    def best_step(self) -> int | None:
        """The step of the lowest FID so far (`--checkpoint best`), or None before the first."""
        best = best_evaluation(self.rows)
        return None if best is None else best["step"]

    def run(self, state: TrainState, per_epoch: int, training_seconds: float) -> float:
        """Evaluate now; returns the seconds it took."""
        from ..generate import sample
        from ..metrics.compare import fid_plot
        from ..metrics.evaluate import evaluate_images, summarise_members

        began, r = time.time(), self.cfg.run
        # The EMA generator when the run keeps one; sample() puts its mode back. A
        # conditional one is asked for every class in turn (ensembles are unconditional).
        members = self.cfg.train.ensemble
        labels = None
        if members > 1:  # each member on the z a single run's evaluation draws
            fakes = member_samples(state.sampler, r.eval_n, self.cfg.train.z_dist, members,
                                   self.device)
            each = [evaluate_images(f, r.dataset, "test", r.data_dir, seed=0,
                                    device=self.device) for f in fakes]
            record = summarise_members(each)
            per_member = {f"{k}.m{i}": e[k] for i, e in enumerate(each) for k in ("fid",)}
            per_member.update({f"{k}_std": record[f"{k}_std"] for k in ("fid", "kid_mean")})
        else:
            labels = asked_classes(state.sampler, None, r.eval_n, "cpu")
            fake = sample(state.sampler, r.eval_n, seed=0, z_dist=self.cfg.train.z_dist,
                          device=self.device, labels=labels)
            record = evaluate_images(fake, r.dataset, "test", r.data_dir, seed=0,
                                     device=self.device, labels=labels,
                                     class_names=self.cfg.model.class_names)
            per_member = {}
        row = {"step": state.step, "epoch": state.step // per_epoch + 1,
               "time": round(training_seconds, 4), "eval": True,
               **{k: record[k] for k in self.KEYS}, **per_member,
               **{k: record.get(k) for k in self.CLASS_KEYS if labels is not None}}
        self.log.write(row)
        self.rows.append(row)
        for watcher in self.watchers:
            watcher.on_rows([row])
        fid_plot({self.out.name: self.rows}, self.out / "fid_curve.png")
        accuracy = row.get("class_accuracy")
        self.say(f"Step {state.step}: FID {row['fid']:.2f} | KID {row['kid_mean']:.4f} | "
                 f"modes {row['modes_covered']}"
                 + (f" | class accuracy {accuracy:.3f}" if accuracy is not None else "")
                 + f" (n={r.eval_n}, {record['evaluator']})")
        return time.time() - began

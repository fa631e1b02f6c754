"""Critic health: rules that read a stream of metric rows and raise flags with a hint.

Every rule is a pure function of a `Stream` (recent training rows, evaluation rows, and the
largest Wasserstein estimate a 1-Lipschitz critic can reach on the data) that returns a `Flag`
or None. `HealthMonitor` keeps the recent rows of a live run and reports each kind of flag
once; `scan` runs the same rules over a finished run's metrics.jsonl.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..runfiles import read_metrics

# How many training rows (one per generator step) the monitor keeps for the rules.
HISTORY = 400
RECENT = 20  # rows behind "the current value" of a noisy statistic (its median)
GP_WARMUP = 100  # steps before the penalty is expected to hold (it starts far from 1)
GP_WINDOW = 50
GP_TOLERANCE = 0.5  # |median gradient norm - 1| beyond this: the penalty is not holding
STALL_WINDOW = 100
STALL_RELATIVE = 1e-3  # a loss whose range over the window is below this share of its size
DIVERSITY_MIN = 0.15  # generated pairwise distance / real pairwise distance
DIVERSITY_READINGS = 3  # consecutive low readings before calling it collapse
COVERAGE_DROP = 2  # classes lost against the best evaluation so far
COVERAGE_READINGS = 2  # consecutive evaluations that must show the drop
OVERFIT_LIMIT = 0.5  # held-out reals scored halfway from training reals to generated images
OVERFIT_READINGS = 5  # consecutive readings (logged rows) beyond it

NON_METRIC = {"step", "epoch", "time", "flag", "hint"}


@dataclass(frozen=True)
class Flag:
    """A raised flag: which rule, the step it fired at, and a hint on what to try."""
    name: str
    step: int
    hint: str

    def row(self) -> dict:
        """The metrics.jsonl row for this flag."""
        return {"step": self.step, "flag": self.name, "hint": self.hint}

    def line(self) -> str:
        """The console line for this flag."""
        return f"[health] step {self.step}: {self.name}: {self.hint}"


@dataclass(frozen=True)
class Stream:
    """What the rules read: training rows, evaluation rows and the critic's bound."""
    rows: Sequence[dict]  # training rows, oldest first
    evals: Sequence[dict] = ()  # evaluation rows (fid, modes_covered, ...), oldest first
    w_bound: float = math.inf  # the largest E[D(real)] - E[D(fake)] of a 1-Lipschitz critic


def lipschitz_bound(image_shape: Sequence[int]) -> float:
    """For images in [-1, 1]^d, two images are at most 2*sqrt(d) apart, so no 1-Lipschitz
    critic can separate real from fake by more than that (56 for 1x28x28)."""
    return 2.0 * math.sqrt(math.prod(int(s) for s in image_shape))


def number(value) -> float:
    """A metric value as a float; metrics.jsonl writes NaN and Inf as strings."""
    if isinstance(value, torch.Tensor):
        return float(value.item())
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return float(value)


def _non_finite(value) -> bool:
    if isinstance(value, str):  # MetricsLog's spelling of NaN and Inf; other text is no number
        return value.strip().lower() in ("nan", "inf", "-inf", "infinity", "-infinity")
    return isinstance(value, (int, float)) and not math.isfinite(value)


def _series(rows: Sequence[dict], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), number(r[key])) for r in rows if key in r]


# The rules.

def non_finite(s: Stream) -> Flag | None:
    """Flags the first training row with a NaN or Inf metric."""
    for row in s.rows:
        bad = sorted(k for k, v in row.items() if k not in NON_METRIC and _non_finite(v))
        if bad:
            return Flag("non_finite", int(row["step"]),
                        f"{', '.join(bad)} became NaN or Inf. Lower --c-lr/--g-lr; a BatchNorm "
                        "critic under a gradient penalty is a common cause (try --critic-norm "
                        "layer); --on-nan skip only hides it")
    return None


def critic_runaway(s: Stream) -> Flag | None:
    """Flags a recent median |Wasserstein estimate| beyond what a 1-Lipschitz critic can reach."""
    recent = _series(s.rows, "wasserstein")[-RECENT:]
    finite = [abs(v) for _, v in recent if math.isfinite(v)]
    if len(finite) < RECENT // 2 or (level := statistics.median(finite)) <= s.w_bound:
        return None
    return Flag("critic_runaway", recent[-1][0],
                f"the Wasserstein estimate E[D(real)] - E[D(fake)] is about {level:.3g}, beyond "
                f"the {s.w_bound:.3g} any 1-Lipschitz critic can reach on these images: the "
                "critic is running away and its losses will keep growing (with a GAN loss: the "
                "discriminator has saturated). Use a critic without "
                "BatchNorm (--critic-norm layer, as in --preset wgan-gp), raise --gp-weight or "
                "lower --c-lr")


def penalty_not_holding(s: Stream) -> Flag | None:
    """Flags a recent median gradient norm at the interpolates more than GP_TOLERANCE from 1."""
    norms = [(step, v) for step, v in _series(s.rows, "gp_norm_mean") if step > GP_WARMUP]
    if len(norms) < GP_WINDOW:
        return None
    norms = norms[-GP_WINDOW:]
    mean = statistics.median(v for _, v in norms)
    if abs(mean - 1.0) <= GP_TOLERANCE:
        return None
    near = [v for _, v in _series(s.rows, "gp_norm_near_1")[-GP_WINDOW:]]
    share = f"; {statistics.fmean(near):.0%} of them within 0.9-1.1" if near else ""
    return Flag("penalty_not_holding", norms[-1][0],
                f"the critic's gradient norm at the interpolates is about {mean:.3g}, not 1"
                f"{share}: the gradient penalty is not holding. Raise --gp-weight; with "
                "--gp-eval-mode or a BatchNorm critic the penalised network is not the one "
                "trained (try --no-gp-eval-mode --critic-norm layer)")


def stalled(s: Stream) -> Flag | None:
    """Flags both losses flat (range under STALL_RELATIVE of their size) for STALL_WINDOW steps."""
    flat = []
    for key in ("g_loss", "d_loss"):
        values = [v for _, v in _series(s.rows, key)[-STALL_WINDOW:]]
        if len(values) < STALL_WINDOW or not all(math.isfinite(v) for v in values):
            return None
        size = max(statistics.median(abs(v) for v in values), 1e-12)
        flat.append(max(values) - min(values) <= STALL_RELATIVE * size)
    if not all(flat):
        return None
    step = int(s.rows[-1]["step"])
    return Flag("stalled", step,
                f"neither loss has moved over the last {STALL_WINDOW} steps: training has "
                "stopped learning. Check the learning rates (--g-lr, --c-lr); with weight "
                "clipping, a --clip too small for the network; vanishing gradients show in "
                "g_grad_norm and c_grad_norm")


def collapse(s: Stream) -> Flag | None:
    """Flags mode collapse: class coverage that fell and stayed down, or near-identical samples."""
    covered = _series(s.evals, "modes_covered")
    if len(covered) > COVERAGE_READINGS:
        # Early evaluations swing by a class or two: the drop must hold for several readings.
        best = max(v for _, v in covered[:-COVERAGE_READINGS])
        step, latest = covered[-1]
        if all(v <= best - COVERAGE_DROP for _, v in covered[-COVERAGE_READINGS:]):
            return Flag("collapse", step,
                        f"class coverage fell from {best:.0f} to {latest:.0f} classes: the "
                        "generator is dropping modes. Try a Wasserstein loss with a gradient "
                        "penalty, --minibatch-discrimination, or an earlier checkpoint")
    diversity = _series(s.rows, "diversity")[-DIVERSITY_READINGS:]
    if len(diversity) == DIVERSITY_READINGS and all(v < DIVERSITY_MIN for _, v in diversity):
        step, latest = diversity[-1]
        return Flag("collapse", step,
                    f"generated images in a batch are {latest:.2f}x as far apart as real ones: "
                    "the samples are becoming near-identical (mode collapse). Try a Wasserstein "
                    "loss with a gradient penalty, --minibatch-discrimination, --n-critic 5, "
                    "or lower --g-lr")
    return None


def critic_overfitting(s: Stream) -> Flag | None:
    """Flags held-out real images scored ever more like generated ones (metrics/overfit.py):
    the critic has started to memorise its training images. The advice depends on whether
    the run augments already (its rows carry p)."""
    readings = _series(s.rows, "overfit")[-OVERFIT_READINGS:]
    if len(readings) < OVERFIT_READINGS or not all(v > OVERFIT_LIMIT for _, v in readings):
        return None
    step, latest = readings[-1]
    what = (f"the critic scores real images it never trained on {latest:.0%} of the way from "
            "its training images to generated ones: it is memorising the training set")
    p = _series(s.rows, "augment_p")
    if not p or p[-1][1] == 0:  # no augmentation (yet)
        return Flag("critic_overfitting", step,
                    f"{what}, and the generator learns that set's quirks. Use --augment "
                    "translation,cutout,colour (p = 0.3 by default), more images, or keep "
                    "an earlier checkpoint")
    # Augmented critics memorise too, only more slowly: on 500 Fashion-MNIST images with
    # p = 0.3 the heuristic reached 0.9 while FID kept improving (README, small data sets).
    return Flag("critic_overfitting", step,
                f"{what}, although its images are augmented (p = {p[-1][1]:.2f}). That alone "
                "is not harm: if FID (--eval-every) still improves, go on; if it worsens, "
                "raise p (--augment-p, or a lower --augment-target with auto), add images, "
                "or keep an earlier checkpoint")


RULES: tuple[Callable[[Stream], Flag | None], ...] = (
    non_finite, critic_runaway, penalty_not_holding, stalled, collapse, critic_overfitting)


def check(stream: Stream, rules=RULES) -> list[Flag]:
    """Every flag the rules raise on this stream."""
    return [flag for rule in rules if (flag := rule(stream)) is not None]


def is_eval_row(row: dict) -> bool:
    """Whether a metrics row is an evaluation (FID or class coverage)."""
    return "flag" not in row and "g_loss" not in row and (
        "fid" in row or "modes_covered" in row)


class HealthMonitor:
    """Feeds rows to the rules as a run goes and returns each kind of flag the first time."""

    def __init__(self, w_bound: float = math.inf, seen: Iterable[str] = (),
                 rules=RULES, history: int = HISTORY):
        self.w_bound, self.rules = w_bound, rules
        self.rows: deque[dict] = deque(maxlen=history)
        self.evals: list[dict] = []
        self.seen = set(seen)

    @classmethod
    def for_run(cls, metrics_path: str | Path, image_shape: Sequence[int]) -> HealthMonitor:
        """A monitor for a run; on resume it stays quiet about flags already logged."""
        seen = [f.name for f in logged_flags(read_rows(metrics_path))]
        return cls(lipschitz_bound(image_shape), seen)

    def observe(self, rows: Iterable[dict]) -> list[Flag]:
        """Takes in new rows; returns the flags raised for the first time."""
        for row in rows:
            if "g_loss" in row:
                self.rows.append(row)
            elif is_eval_row(row):
                self.evals.append(row)
        stream = Stream(list(self.rows), self.evals, self.w_bound)
        new = [f for f in check(stream, self.rules) if f.name not in self.seen]
        self.seen.update(f.name for f in new)
        return new


def read_rows(path: str | Path) -> list[dict]:
    """Every row of a metrics.jsonl (training, evaluation and flag rows); a missing file is
    empty; lines cut short by a crash, or that are not rows, are skipped with one warning."""
    return read_metrics(path)


def logged_flags(rows: Iterable[dict]) -> list[Flag]:
    """The flags recorded in metrics rows (the rows with a "flag" key)."""
    return [Flag(r["flag"], int(r.get("step", 0)), str(r.get("hint", "")))
            for r in rows if "flag" in r]


def scan(rows: Sequence[dict], w_bound: float = math.inf, every: int = 10) -> list[Flag]:
    """The flags a live monitor would have raised on these rows, fed `every` rows at a time."""
    monitor, flags = HealthMonitor(w_bound), []
    for start in range(0, len(rows), every):
        flags += monitor.observe(rows[start:start + every])
    return flags


# The per-step statistic behind the diversity rule.

def mean_pairwise_distance(images: torch.Tensor) -> torch.Tensor:
    """Mean L2 distance over all pairs of images in a batch (N >= 2)."""
    return torch.pdist(images.flatten(1).float()).mean()


def batch_diversity(fake: torch.Tensor, real: torch.Tensor) -> float:
    """How spread out generated images are, relative to real ones: about 1 for a healthy
    generator, near 0 when every z gives the same image."""
    return float(mean_pairwise_distance(fake) / mean_pairwise_distance(real).clamp_min(1e-12))


@torch.no_grad()
def generate_as_trained(generator: torch.nn.Module, z: torch.Tensor,
                        labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images from a training-mode forward (batch statistics: what the critic sees), leaving
    BatchNorm's running statistics as they were so the run itself is not changed. Inference
    mode would not do: early in training the running statistics make every image alike.
    labels: the classes asked for, for a conditional generator."""
    saved = [b.clone() for b in generator.buffers()]
    images = generator(z) if labels is None else generator(z, labels)
    for buffer, value in zip(generator.buffers(), saved):
        buffer.copy_(value)
    return images

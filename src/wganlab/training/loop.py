"""The training loop: read top to bottom, one paragraph per concern.

The side concerns (metrics log, health, TensorBoard, sample grids, checkpoints, evaluation,
the console) are small objects in logbook.py, outputs.py and progress.py; the loop decides
when each one runs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..base import checkpoint
from ..base.device import seed_everything
from ..base.files import remove_temporaries, write_json
from ..base.lock import RunLock
from ..config import Config, apply_overrides, validate
from ..data import Dataset, load_dataset
from ..ensemble import check_memory, member_seeds
from ..errors import ConfigError, NonFiniteError
from ..metrics import health
from ..models import check_image_size
from ..reporting.plots import redraw
from ..reporting.report import write_report
from ..runfiles import best_evaluation
from ..runfolder import check_run_folder
from ..version import __version__
from . import distributed
from .augmenting import AugmentState, Overfitting, select_images
from .logbook import HealthWatch, StepLog, TensorBoardScalars
from .members import expand
from .outputs import Checkpoints, EpochSummary, Evaluation, SampleGrids
from .progress import Progress
from .resume import check_same_run, load_initial_weights, resume_point
from .runner import make_runner
from .runtime import Clock, StopSignals
from .schedule import member_orders, planned_steps, steps_per_epoch
from .state import N_FIXED, TrainState

__all__ = ["N_FIXED", "TrainResult", "train"]


@dataclass
class TrainResult:
    """Where a run is, how far it got, and how it ended."""

    run_dir: Path
    step: int
    exit_code: int = 0  # 0, or 130/143/129 when a signal stopped it
    skipped_steps: int = 0
    last_eval: dict | None = None  # the last --eval-every row (fid, kid_mean, ...), if any
    best_eval: dict | None = None  # the --eval-every row of the lowest FID, if any


def train(cfg: Config, resume: bool | str = False, data: Dataset | None = None,
          init_from: str | None = None) -> TrainResult:
    """Train (or, with `resume`, continue) the run `cfg` describes; see the README. `cfg` is
    not changed (the run's own copy takes the data set's image shape).

    init_from: a checkpoint whose network weights (only) this new run starts from.
    """
    if init_from and resume:
        raise ConfigError("--init-from: starts a new run from a checkpoint's weights; "
                          "--resume continues one: give only one of them")
    check_run_folder(cfg, resume)  # never the root, a system folder or a folder not a run's
    # One writer per run directory (rank 0 holds RUN/.lock while it writes).
    lock = RunLock(cfg.run.out)
    try:
        return _train(cfg, resume, data, init_from, lock)
    finally:
        lock.release()


def _train(cfg: Config, resume: bool | str, data: Dataset | None, init_from: str | None,
           lock: RunLock) -> TrainResult:
    validate(cfg)
    t, r = cfg.train, cfg.run
    out = Path(r.out)
    # Under torchrun: join the process group; only rank 0 (`main`) writes anything.
    shard, device = distributed.setup(r.device)
    main = shard.is_main
    if main and out.is_dir():
        lock.acquire()  # before reading anything: two resumes of one run never both start
    seed_everything(t.seed, r.deterministic)

    # Load the data; the model takes the data set's shape unless one was given.
    if data is None:  # else images given from Python, checked by data.user
        data = load_dataset(r.dataset, "train", r.data_dir, cfg.model.image_shape,
                            r.on_bad_image)
    # --max-images' subset; held-out real images for the overfitting heuristic, if any.
    data, heldouts, block = select_images(cfg, data)
    n_images = block or len(data)  # each member's, when each trains on its own subset
    cfg, images, labels = _prepare_data(cfg, data, n_images, shard, device)
    per_epoch = steps_per_epoch(n_images, cfg)
    total = planned_steps(cfg, per_epoch)

    # Build the networks, optimizers and random streams; restore them when resuming.
    state = TrainState.build(cfg, device)
    found = _find_checkpoint(resume, out, cfg, device, main)
    if found is not None:
        state.restore(found[1], found[0], device)
        if main:
            print(f"Resuming {out} from {found[0]} at step {state.step}")
    if init_from:
        load_initial_weights(state, init_from, device)
    # How each step runs: one CUDA graph, eager, or eager under DDP (see runner.py).
    augment_state = state.extras.get("augment")  # --augment's p and random streams
    runner = make_runner(cfg, state.generator, state.critic, state.g_opt, state.c_opt, images,
                         state.noise, device, shard, augment_state, labels)
    if main:
        lock.acquire()
        _prepare_run_dir(out, cfg, resuming=bool(resume))
        write_json(out / "config.json", cfg.to_dict())
        write_json(out / "run.json", {
            "version": __version__, "steps_per_epoch": per_epoch, "planned_steps": total,
            "n_images": n_images, "data_source": data.source, "device": str(device),
            "max_images": r.max_images, "subset_seed": _subset_seed(cfg),
            "heldout_images": 0 if heldouts is None else len(heldouts[0]),
            "world_size": shard.world, "step_mode": runner.mode, "eager_reason": runner.reason,
            "speed": asdict(runner.speed), "speed_notes": runner.notes,
            "init_from": str(init_from) if init_from else _earlier(out, "init_from")})

    # The side concerns, each an object the loop calls; only rank 0 writes or prints.
    clock = Clock(state.elapsed, t.minutes)
    progress = Progress(total, state.step, clock, r.progress and main)
    log = StepLog(out, cfg, shard, runner.mode, resumed_at=state.step)
    tensorboard = TensorBoardScalars(out) if r.tensorboard and main else None
    grids, saves = SampleGrids(out, tensorboard), Checkpoints(out, cfg, per_epoch)
    summary = EpochSummary(out, progress.say)
    watchers = [progress]  # objects with on_rows(rows), called after each sync
    evaluation = None
    if main:
        health_watch = HealthWatch(log, cfg.model.image_shape, progress.say)
        watchers += [summary, health_watch] + [tensorboard] * bool(tensorboard)
        evaluation = Evaluation(out, cfg, log, progress.say, device, [health_watch])
        saves.keep = evaluation.best_step  # the lowest FID's checkpoint outlives --keep-last
    auto = augment_state if augment_state is not None and augment_state.auto else None
    every = t.augment_interval if auto is not None else None  # p adapts (--augment-p auto)
    overfit = None if heldouts is None else Overfitting(
        images, heldouts, every, device, block, labels)
    order, order_epoch, exit_code = None, -1, 0

    def sync():
        """Bring the pending step values to the host: rows logged, watched, shown."""
        rows, skipped = log.flush(state.step)
        state.skipped += skipped
        for watcher in watchers:
            watcher.on_rows(rows)

    with StopSignals() as signals:
        while total is None or state.step < total:
            # Run one generator step: n_critic critic updates and a generator update, or the
            # tutorial's shared step, on the batches the epoch order gives.
            epoch, k = divmod(state.step, per_epoch)
            if order_epoch != epoch:
                order, order_epoch = member_orders(n_images, cfg, epoch, device, block), epoch
            try:
                terms = runner.step(order, k * (1 if t.shared_step else t.n_critic))
            except NonFiniteError as e:
                raise NonFiniteError(f"step {state.step + 1}: {e}; stopping "
                                     "(use --on-nan skip to skip such steps)") from None
            state.after_step()  # the generator EMA, when the run keeps one
            state.step += 1
            log_now = state.step % r.log_every == 0
            adapt_now = overfit is not None and overfit.due(state.step)  # --augment-p auto
            # The fixed-z images as the critic sees them: one pass for all that read them.
            fake = health.generate_as_trained(state.generator, state.fixed_z,
                                              state.fixed_labels) if log_now or adapt_now \
                else None
            if adapt_now:
                shown = t.augment_interval * t.batch_size * (1 if t.shared_step else t.n_critic)
                auto.adjust(overfit.measure(state, state.step, fake), shown)
            meta = {"step": state.step, "epoch": epoch + 1,
                    "time": round(clock.training_seconds(), 4)}
            if log_now:  # cheap, but not every step: it syncs with the device
                meta["diversity"] = health.batch_diversity(fake, runner.last_real)
                if overfit is not None:  # the heuristic, and p in an augmented run
                    meta.update(_overfitting_row(overfit, augment_state, state, fake))
            log.add(meta, terms)
            progress.advance(state.step)

            # Log, then, at an epoch's end, samples, a checkpoint, the epoch line and plots.
            epoch_end = state.step % per_epoch == 0
            save_now = epoch_end or saves.due(state.step)
            evaluate_now = evaluation is not None and evaluation.due(state.step)
            if log_now or save_now or evaluate_now:
                sync()
            if epoch_end and main:
                grids.save(state, epoch + 1)
            if save_now and main:
                saves.save(state, clock.training_seconds())
            if epoch_end and main:
                summary.end_epoch(epoch + 1, clock.training_seconds())

            # Measure quality every eval_every steps; that time does not count as training.
            if evaluate_now:
                clock.pause(evaluation.run(state, per_epoch, clock.training_seconds()))
                if evaluation.best_step() == state.step and not save_now:
                    saves.save(state, clock.training_seconds())  # for --checkpoint best

            # Stop early on a signal or when the wall-time budget is spent (all ranks agree).
            if distributed.any_across(signals.received is not None or clock.out_of_time(),
                                      shard, device):
                exit_code = signals.exit_code or 0
                break

        # Save what the last (possibly partial) epoch produced.
        sync()
        progress.close()
        if state.step % per_epoch != 0 and main:
            grids.save(state, state.step // per_epoch + 1)
            saves.save(state, clock.training_seconds())
        if evaluation is not None and evaluation.every and not evaluation.due(state.step):
            evaluation.run(state, per_epoch, clock.training_seconds())
        drawn = redraw(out) if main else []
        log.close()
        if tensorboard is not None:
            tensorboard.close()
    if main:
        write_report(out, drawn=drawn)
    distributed.teardown(shard)
    if state.skipped:
        print(f"Skipped {state.skipped} steps with non-finite values (--on-nan skip)")
    rows = evaluation.rows if evaluation is not None else []
    return TrainResult(out, state.step, exit_code, state.skipped,
                       rows[-1] if rows else None, best_evaluation(rows))


def _prepare_data(cfg: Config, data: Dataset, n_images: int, shard, device: torch.device
                  ) -> tuple[Config, torch.Tensor, torch.Tensor | None]:
    """The run's config with the data set's image shape (and, conditional, its class names),
    the images (on the device when they fit) and the labels beside them (None when
    unconditional), checked against each other."""
    t = cfg.train
    shape = tuple(int(s) for s in data.images.shape[1:])
    cfg = apply_overrides(cfg, {"model": {"image_shape": shape}})
    labels = None
    if cfg.model.conditional != "none":
        names = class_names_for(cfg, data)
        cfg, labels = apply_overrides(cfg, {"model": {"class_names": names}}), data.labels
    check_image_size(shape, cfg.model.n_blocks)
    if t.batch_size > n_images:
        raise ConfigError(f"--batch-size: {t.batch_size} is larger than the data set "
                          f"({n_images} images)")
    distributed.check_batch(t.batch_size, shard)
    if t.ensemble > 1:
        if shard.world > 1:
            raise ConfigError("--ensemble: an ensemble trains on one process; several "
                              "processes (torchrun) would split its member-major batches")
        check_memory(cfg, shape, device)
    # The labels go where the images go: a CUDA graph gathers both on the device.
    where = device if data.images.nbytes < 2**32 else data.images.device
    return cfg, data.images.to(where), None if labels is None else labels.to(where)


def class_names_for(cfg: Config, data: Dataset) -> tuple[str, ...]:
    """The class names of a conditional run on `data`: the config's (--class-names, or the
    resumed run's), else the data set's own; ConfigError when the data cannot condition."""
    flag = f"--conditional {cfg.model.conditional}"
    if data.labels is None:
        hint = (": put each class's images in a subfolder named after it"
                if data.name.startswith("folder:") else
                "; pass train(cfg, data=(images, labels))" if data.name == "user" else "")
        raise ConfigError(f"{flag}: the data set {data.name} has no labels{hint}")
    count = int(data.labels.max()) + 1 if len(data.labels) else 0
    names = cfg.model.class_names or data.class_names or tuple(map(str, range(count)))
    if len(names) < 2 or count < 2:
        raise ConfigError(f"{flag}: the data set {data.name} has one class "
                          f"({names[0] if names else 'none'}); a conditional model needs "
                          "at least two")
    if count > len(names):
        raise ConfigError(f"--class-names: {len(names)} names, but the data set {data.name} "
                          f"has labels up to {count - 1}")
    return tuple(names)


def _find_checkpoint(resume: bool | str, out: Path, cfg: Config, device, main: bool):
    """(path, state) of the checkpoint to resume from, or None for a fresh run.

    A checkpoint given by path must come from a run of this config; the run's own newest
    one is taken past damaged ones, which are kept aside (see resume.py).
    """
    if not resume:
        return None
    if isinstance(resume, str):
        state = checkpoint.load(resume, device)
        check_same_run(Path(resume), state, cfg)
        return resume, state
    found = resume_point(out, device, main, cfg)
    if found is None:
        return None
    for line in found.kept_aside:
        print(f"wganlab: {line}", file=sys.stderr)
    return found.path, found.state


def _overfitting_row(overfit: Overfitting, augment: AugmentState | None, state: TrainState,
                     fake: torch.Tensor) -> dict:
    """The row fields of the overfitting heuristic and, in an augmented run, p (so that the
    health rule can tell a run that augments already); reads the device. An ensemble's are
    the mean over members and each member's as NAME.mK. fake: the fixed-z images the row's
    diversity was read from (the heuristic scores the same ones)."""
    if augment is not None and augment.auto:  # read at p's last adjustment
        values = {"overfit": augment.overfit, "augment_p": augment.p}
    else:
        values = {"overfit": overfit.measure(state, state.step, fake)}
        if augment is not None:
            values["augment_p"] = augment.p
    return {name: float(v) for name, v in expand(values).items()}


def _subset_seed(cfg: Config) -> int | list[int] | None:
    """The seed(s) --max-images' subset was drawn by: each member's for an ensemble."""
    t = cfg.train
    if cfg.run.max_images is None:
        return None
    return member_seeds(t.seed, t.ensemble, t.seeds) if t.ensemble > 1 else t.seed


def _earlier(out: Path, key: str):
    """A value the run's previous run.json recorded (kept across resumes)."""
    try:
        return json.loads((out / "run.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _prepare_run_dir(out: Path, cfg: Config, resuming: bool) -> None:
    existing = out / "config.json"
    if existing.exists() and not resuming:
        same = json.loads(existing.read_text()) == json.loads(cfg.to_json())
        what = "this run" if same else "a run with a different config"
        raise ConfigError(f"--out: {out} already holds {what}; pass --resume to continue it "
                          "or choose another --out")
    (out / "samples").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    for folder in (out, out / "samples", out / "checkpoints"):
        remove_temporaries(folder)  # left by a process killed mid-write; we hold the lock

"""The training loop: read top to bottom, one paragraph per concern."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from ..base import checkpoint
from ..base.device import seed_everything
from ..base.files import atomic_write, write_json
from ..base.images import grid_png, make_grid, to_uint8
from ..config import Config, validate
from ..data import Dataset, load_dataset, sample_z
from ..errors import CheckpointError, ConfigError, NonFiniteError
from ..metrics import health
from ..models import build_models
from ..reporting.plots import redraw
from ..reporting.report import write_report
from ..version import __version__
from . import distributed
from .optim import make_optimizer
from .runner import Speed, make_runner
from .runtime import MetricsLog, StopSignals
from .schedule import epoch_order, planned_steps, steps_per_epoch

N_FIXED = 64  # fixed-z samples drawn every epoch


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    exit_code: int = 0
    skipped_steps: int = 0


def prepare_run_dir(out: Path, cfg: Config, resuming: bool) -> None:
    existing = out / "config.json"
    if existing.exists() and not resuming:
        same = json.loads(existing.read_text()) == json.loads(cfg.to_json())
        what = "this run" if same else "a run with a different config"
        raise ConfigError(f"--out: {out} already holds {what}; pass --resume to continue it "
                          "or choose another --out")
    (out / "samples").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)


def train(cfg: Config, resume: bool | str = False, speed: Speed = Speed(),
          data: Dataset | None = None) -> TrainResult:
    validate(cfg)
    t, r = cfg.train, cfg.run
    out = Path(r.out)
    # Under torchrun: join the process group; only rank 0 (`main`) writes anything.
    shard, device = distributed.setup(r.device)
    main = shard.is_main
    seed_everything(t.seed, r.deterministic)

    # Load the data; the model takes the data set's shape unless one was given.
    if data is None:  # else images given from Python, checked by data.user
        data = load_dataset(r.dataset, "train", r.data_dir, cfg.model.image_shape, r.on_bad_image)
    cfg.model.image_shape = tuple(int(s) for s in data.images.shape[1:])
    _check_blocks(cfg)
    if t.batch_size > len(data.images):
        raise ConfigError(f"--batch-size: {t.batch_size} is larger than the data set "
                          f"({len(data.images)} images)")
    distributed.check_batch(t.batch_size, shard)
    images = data.images.to(device) if data.images.nbytes < 2**32 else data.images
    per_epoch = steps_per_epoch(len(images), cfg)
    total = planned_steps(cfg, per_epoch)

    # Build the networks, optimizers and random streams.
    generator, critic = build_models(cfg.model, cfg.model.image_shape)
    generator, critic = generator.to(device), critic.to(device)
    g_opt = make_optimizer(cfg, generator.parameters(), t.g_lr)
    c_opt = make_optimizer(cfg, critic.parameters(), t.c_lr)
    noise = torch.Generator(device=device).manual_seed(t.seed + 1)
    fixed_z = sample_z(N_FIXED, cfg.model.z_dim, t.z_dist,
                       generator=torch.Generator(device=device).manual_seed(t.seed + 2),
                       device=device)
    step, skipped, elapsed = 0, 0, 0.0

    # Restore the full state when resuming.
    found = None
    if resume:
        found = (resume, checkpoint.load(resume, device)) if isinstance(resume, str) \
            else checkpoint.latest_valid(out, device)
    if found is not None:
        path, state = found
        try:
            generator.load_state_dict(state["generator"])
            critic.load_state_dict(state["critic"])
            g_opt.load_state_dict(state["g_optimizer"])
            c_opt.load_state_dict(state["c_optimizer"])
            checkpoint.set_rng_state(state["rng"], noise)
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: does not fit this run's config "
                                  f"({str(e).strip().splitlines()[0][:200]})") from e
        fixed_z, step, skipped = state["fixed_z"].to(device), state["step"], state["skipped"]
        elapsed = state.get("elapsed", 0.0)
        if main:
            print(f"Resuming {out} from {path} at step {step}")
    # How each step runs: one CUDA graph, eager, or eager under DDP (see runner.py).
    runner = make_runner(cfg, generator, critic, g_opt, c_opt, images, noise, device, shard,
                         speed)
    if main:
        prepare_run_dir(out, cfg, resuming=bool(resume))
        write_json(out / "config.json", cfg.to_dict())
        write_json(out / "run.json", {
            "version": __version__, "steps_per_epoch": per_epoch, "planned_steps": total,
            "n_images": len(images), "data_source": data.source, "device": str(device),
            "world_size": shard.world, "step_mode": runner.mode, "eager_reason": runner.reason})

    def save_checkpoint():
        if not main:
            return
        for net, name in ((generator, "generator"), (critic, "critic")):
            if not all(torch.isfinite(p).all() for p in net.parameters()):
                raise NonFiniteError(f"step {step}: {name} weights are not finite; "
                                     "no checkpoint written")
        state = {"generator": generator.state_dict(), "critic": critic.state_dict(),
                 "g_optimizer": g_opt.state_dict(), "c_optimizer": c_opt.state_dict(),
                 "step": step, "epoch": step // per_epoch, "skipped": skipped,
                 "rng": checkpoint.rng_state(noise), "fixed_z": fixed_z.cpu(),
                 "elapsed": time.time() - start,
                 "config": cfg.to_dict(), "version": __version__}
        checkpoint.save(state, checkpoint.checkpoint_path(out, step))
        checkpoint.prune(out, r.keep_last)

    def save_samples(epoch: int):
        if not main:
            return
        generator.eval()
        with torch.no_grad():
            images = to_uint8(generator(fixed_z))
        generator.train()
        png = grid_png(images)
        if tb is not None:
            tb.add_image("samples", make_grid(images), step, dataformats="HWC")
        atomic_write(out / "samples" / f"epoch-{epoch:03d}.png",
                                lambda f: f.write(png))

    log = MetricsLog(out / "metrics.jsonl", truncate_after_step=step) if main else None
    tb = _tensorboard(out) if r.tensorboard and main else None
    monitor = health.HealthMonitor.for_run(log.path, cfg.model.image_shape) if main else None
    pending, epoch_rows = [], []
    # `start` counts training time across resumes; --minutes counts this process only.
    started, exit_code = time.time(), 0
    start = started - elapsed

    def flush():
        nonlocal skipped
        if not pending:
            return
        keys = sorted(pending[0][1])
        values = torch.stack([torch.stack([row[k].float() for k in keys]) for _, row in pending])
        values = distributed.mean_across(values, shard)
        for (meta, _), vals in zip(pending, values.cpu().tolist()):
            row = {**meta, **dict(zip(keys, vals))}
            if row.pop("nonfinite", 0.0):  # eager steps stopped already; graph steps stop here
                if r.on_nan == "stop":
                    raise NonFiniteError(_nonfinite_message(row, runner.mode, step))
                skipped += 1
            row["wasserstein"] = row["d_real"] - row["d_fake"]
            if main:
                log.write(row)
            epoch_rows.append(row)
            if tb is not None:
                for k in ("g_loss", "d_loss", "gp", "wasserstein"):
                    if k in row:
                        tb.add_scalar(f"train/{k}", row[k], row["step"])
        bar.set_postfix(G=f"{epoch_rows[-1]['g_loss']:.3g}", D=f"{epoch_rows[-1]['d_loss']:.3g}")
        # Check the critic's health; each kind of flag is reported once.
        for flag in monitor.observe(epoch_rows[-len(pending):]) if main else []:
            log.write(flag.row())
            bar.write(flag.line())
        pending.clear()

    def evaluate_now() -> float:
        """FID, KID and class coverage of eval_n samples; returns the seconds it took."""
        if not main:
            return 0.0
        from ..metrics.compare import fid_plot
        from ..metrics.evaluate import evaluate_images, sample_uint8

        began = time.time()
        generator.eval()
        fake = sample_uint8(generator, r.eval_n, t.z_dist, seed=0, device=device)
        generator.train()
        record = evaluate_images(fake, r.dataset, "test", r.data_dir, seed=0, device=device)
        row = {"step": step, "epoch": step // per_epoch + 1,
               "time": round(began - start, 4), "eval": True,
               **{k: record[k] for k in ("fid", "kid_mean", "precision", "recall", "coverage",
                                         "modes_covered", "class_kl_to_uniform", "n_fake",
                                         "n_real", "reference", "evaluator_sha256")}}
        log.write(row)
        eval_rows.append(row)
        for flag in monitor.observe([row]):
            log.write(flag.row())
            bar.write(flag.line())
        fid_plot({out.name: eval_rows}, out / "fid_curve.png")
        bar.write(f"Step {step}: FID {row['fid']:.2f} | KID {row['kid_mean']:.4f} | "
                  f"modes {row['modes_covered']} (n={r.eval_n}, {record['evaluator']})")
        return time.time() - began

    eval_rows = [json.loads(line) for line in log.path.read_text().splitlines()
                 if '"eval": true' in line] if main and r.eval_every else []
    bar = tqdm(total=total, initial=step, disable=not (r.progress and main), unit="step",
               dynamic_ncols=True)
    with StopSignals() as signals:
        order, order_epoch = None, -1
        while total is None or step < total:
            epoch, k = divmod(step, per_epoch)
            if order_epoch != epoch:
                order, order_epoch = epoch_order(len(images), t.seed, epoch, device), epoch
            first = k * (1 if t.shared_step else t.n_critic)  # this step's first batch
            try:
                # n_critic critic updates and one generator update, or the tutorial's step.
                terms = runner.step(order, first)
            except NonFiniteError as e:
                raise NonFiniteError(f"step {step + 1}: {e}; stopping "
                                     "(use --on-nan skip to skip such steps)") from None
            real = runner.last_real
            step += 1
            meta = {"step": step, "epoch": epoch + 1, "time": round(time.time() - start, 4)}
            if step % r.log_every == 0:  # cheap, but not every step: it syncs with the device
                meta["diversity"] = health.batch_diversity(
                    health.generate_as_trained(generator, fixed_z), real)
            pending.append((meta, terms))
            bar.update(1)
            if step % r.log_every == 0:
                flush()

            # End of an epoch: samples, checkpoint, the tutorial's epoch line, plots.
            if step % per_epoch == 0:
                flush()
                save_samples(epoch + 1)
                save_checkpoint()
                if main:
                    _epoch_line(epoch + 1, time.time() - start, epoch_rows, bar)
                    redraw(out)
                epoch_rows.clear()
            elif r.checkpoint_every and step % r.checkpoint_every == 0:
                flush()
                save_checkpoint()

            # Measure quality every eval_every steps; that time does not count as training.
            if r.eval_every and step % r.eval_every == 0:
                flush()
                paused = evaluate_now()
                start, started = start + paused, started + paused

            # Stop early on a signal or when the wall-time budget is spent (all ranks agree).
            out_of_time = t.minutes is not None and time.time() - started >= t.minutes * 60
            if distributed.any_across(signals.received is not None or out_of_time, shard,
                                      device):
                exit_code = signals.exit_code or 0
                break

        # Save what the last (possibly partial) epoch produced.
        flush()
        bar.close()
        if step % per_epoch != 0:
            save_samples(step // per_epoch + 1)
            save_checkpoint()
        if r.eval_every and step % r.eval_every != 0:
            evaluate_now()
        if main:
            redraw(out)
            log.close()
        if tb is not None:
            tb.close()
    if main:
        write_report(out)
    distributed.teardown(shard)
    if skipped:
        print(f"Skipped {skipped} steps with non-finite values (--on-nan skip)")
    return TrainResult(out, step, exit_code, skipped)


def _nonfinite_message(row: dict, mode: str, step: int) -> str:
    # NaN fails every comparison, so `not abs(v) < inf` catches NaN and both infinities.
    bad = [k for k, v in row.items() if isinstance(v, float) and not abs(v) < float("inf")]
    return (f"step {row['step']}: non-finite value in {', '.join(bad) or 'a gradient'}; "
            f"stopping at step {step} (use --on-nan skip to skip such steps; {mode} steps "
            "are checked with the metrics, every --log-every steps)")


def _check_blocks(cfg: Config) -> None:
    """The data set's own image size must halve n_blocks times (the flag check saw no size)."""
    _, h, w = cfg.model.image_shape
    k = 2 ** cfg.model.n_blocks
    if h % k or w % k:
        raise ConfigError(f"--n-blocks: {cfg.model.n_blocks} blocks need H and W divisible by "
                          f"{k}; the images are {h}x{w} (lower --n-blocks or set --image-shape)")


def _epoch_line(epoch: int, seconds: float, rows: list[dict], bar) -> None:
    """The tutorial's per-epoch line; D-Real and D-Fake are its loss terms -E[D(x)], E[D(G(z))]."""
    if not rows:
        return
    n = len(rows)
    g = sum(r["g_loss"] for r in rows) / n
    d = sum(r["d_loss"] for r in rows) / n
    real = -sum(r["d_real"] for r in rows) / n
    fake = sum(r["d_fake"] for r in rows) / n
    bar.write(f"Epoch {epoch:3d} | ET {seconds / 60:.2f} min | Avg Losses >> G/D "
              f"{g:6.2f}/{d:6.2f} [D-Real: {real:6.2f} D-Fake: {fake:6.2f}]")


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError("--tensorboard: needs the tensorboard extra "
                          "(pip install 'wganlab[tensorboard]')") from e
    return SummaryWriter(str(out / "tensorboard"))

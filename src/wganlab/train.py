"""The training loop: read top to bottom, one paragraph per concern."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from . import __version__, checkpoint, health
from .config import Config, validate
from .data import load_dataset, sample_z, to_float
from .errors import ConfigError, NonFiniteError
from .models import build_models
from .plots import grid_png, make_grid, redraw, to_uint8
from .report import write_report
from .runtime import MetricsLog, StopSignals, pick_device, seed_everything
from .steps import critic_update, generator_update, shared_update

N_FIXED = 64  # fixed-z samples drawn every epoch


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    exit_code: int = 0
    skipped_steps: int = 0


def make_optimizer(cfg: Config, params, lr: float) -> torch.optim.Optimizer:
    if cfg.train.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.Adam(params, lr=lr, betas=tuple(cfg.train.betas))


def steps_per_epoch(n_images: int, cfg: Config) -> int:
    """Generator steps per pass over the data; each step draws n_critic real batches."""
    batches = n_images // cfg.train.batch_size
    return max(1, batches // (1 if cfg.train.shared_step else cfg.train.n_critic))


def planned_steps(cfg: Config, per_epoch: int) -> int | None:
    t = cfg.train
    if t.steps is not None:
        return t.steps
    if t.epochs is not None:
        return t.epochs * per_epoch
    return None if t.minutes is not None else 100 * per_epoch  # the tutorial's 100 epochs


def epoch_order(n: int, seed: int, epoch: int, device) -> torch.Tensor:
    """The data order of an epoch depends only on (seed, epoch), so a resume needs no state."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def write_json(path: Path, obj: dict) -> None:
    checkpoint.atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


def prepare_run_dir(out: Path, cfg: Config, resuming: bool) -> None:
    existing = out / "config.json"
    if existing.exists() and not resuming:
        same = json.loads(existing.read_text()) == json.loads(cfg.to_json())
        what = "this run" if same else "a run with a different config"
        raise ConfigError(f"--out: {out} already holds {what}; pass --resume to continue it "
                          "or choose another --out")
    (out / "samples").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)


def train(cfg: Config, resume: bool | str = False) -> TrainResult:
    validate(cfg)
    t, r = cfg.train, cfg.run
    out = Path(r.out)
    device = pick_device(r.device)
    seed_everything(t.seed, r.deterministic)

    # Load the data; the model takes the data set's shape unless one was given.
    data = load_dataset(r.dataset, "train", r.data_dir, cfg.model.image_shape, r.on_bad_image)
    cfg.model.image_shape = tuple(int(s) for s in data.images.shape[1:])
    if t.batch_size > len(data.images):
        raise ConfigError(f"--batch-size: {t.batch_size} is larger than the data set "
                          f"({len(data.images)} images)")
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
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        g_opt.load_state_dict(state["g_optimizer"])
        c_opt.load_state_dict(state["c_optimizer"])
        checkpoint.set_rng_state(state["rng"], noise)
        fixed_z, step, skipped = state["fixed_z"].to(device), state["step"], state["skipped"]
        elapsed = state.get("elapsed", 0.0)
        print(f"Resuming {out} from {path} at step {step}")
    prepare_run_dir(out, cfg, resuming=bool(resume))
    write_json(out / "config.json", cfg.to_dict())
    write_json(out / "run.json", {"version": __version__, "steps_per_epoch": per_epoch,
                                  "planned_steps": total, "n_images": len(images),
                                  "data_source": data.source, "device": str(device)})

    def save_checkpoint():
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
        generator.eval()
        with torch.no_grad():
            images = to_uint8(generator(fixed_z))
        generator.train()
        png = grid_png(images)
        if tb is not None:
            tb.add_image("samples", make_grid(images), step, dataformats="HWC")
        checkpoint.atomic_write(out / "samples" / f"epoch-{epoch:03d}.png",
                                lambda f: f.write(png))

    log = MetricsLog(out / "metrics.jsonl", truncate_after_step=step)
    tb = _tensorboard(out) if r.tensorboard else None
    monitor = health.HealthMonitor.for_run(log.path, cfg.model.image_shape)
    pending, epoch_rows = [], []
    # `start` counts training time across resumes; --minutes counts this process only.
    started, exit_code = time.time(), 0
    start = started - elapsed

    def flush():
        if not pending:
            return
        keys = sorted(pending[0][1])
        values = torch.stack([torch.stack([row[k].float() for k in keys]) for _, row in pending])
        for (meta, _), vals in zip(pending, values.cpu().tolist()):
            row = {**meta, **dict(zip(keys, vals))}
            row["wasserstein"] = row["d_real"] - row["d_fake"]
            log.write(row)
            epoch_rows.append(row)
            if tb is not None:
                for k in ("g_loss", "d_loss", "gp", "wasserstein"):
                    if k in row:
                        tb.add_scalar(f"train/{k}", row[k], row["step"])
        bar.set_postfix(G=f"{epoch_rows[-1]['g_loss']:.3g}", D=f"{epoch_rows[-1]['d_loss']:.3g}")
        # Check the critic's health; each kind of flag is reported once.
        for flag in monitor.observe(epoch_rows[-len(pending):]):
            log.write(flag.row())
            bar.write(flag.line())
        pending.clear()

    def batch(order, i):  # the i-th batch of an epoch's order
        idx = order[i * t.batch_size:(i + 1) * t.batch_size]
        return to_float(images[idx].to(device, non_blocking=True))

    def z():
        return sample_z(t.batch_size, cfg.model.z_dim, t.z_dist, noise, device)

    bar = tqdm(total=total, initial=step, disable=not r.progress, unit="step", dynamic_ncols=True)
    with StopSignals() as signals:
        order, order_epoch = None, -1
        while total is None or step < total:
            epoch, k = divmod(step, per_epoch)
            if order_epoch != epoch:
                order, order_epoch = epoch_order(len(images), t.seed, epoch, device), epoch
            first = k * (1 if t.shared_step else t.n_critic)  # this step's first batch
            try:
                if t.shared_step:
                    # The tutorial's step: one forward of G feeds both updates.
                    real = batch(order, first)
                    terms, ok = shared_update(t, generator, critic, g_opt, c_opt, real, z(),
                                              noise, r.on_nan)
                else:
                    # Update the critic n_critic times, each on a fresh real batch.
                    c_terms = []
                    for j in range(t.n_critic):
                        real = batch(order, first + j)
                        ct, ok = critic_update(t, generator, critic, c_opt, real, z(), noise,
                                               r.on_nan)
                        c_terms.append(ct)
                    terms = {key: torch.stack([c[key] for c in c_terms]).mean()
                             for key in c_terms[-1]}
                    # Update the generator once.
                    g_terms, g_ok = generator_update(t, generator, critic, g_opt, z(), real,
                                                     r.on_nan)
                    terms.update(g_terms)
                    ok = ok and g_ok
            except NonFiniteError as e:
                raise NonFiniteError(f"step {step + 1}: {e}; stopping "
                                     "(use --on-nan skip to skip such steps)") from None
            skipped += not ok
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
                _epoch_line(epoch + 1, time.time() - start, epoch_rows, bar)
                epoch_rows.clear()
                redraw(out)
            elif r.checkpoint_every and step % r.checkpoint_every == 0:
                flush()
                save_checkpoint()

            # Stop early on a signal or when the wall-time budget is spent.
            if signals.received is not None:
                exit_code = signals.exit_code
                break
            if t.minutes is not None and time.time() - started >= t.minutes * 60:
                break

        # Save what the last (possibly partial) epoch produced.
        flush()
        bar.close()
        if step % per_epoch != 0:
            save_samples(step // per_epoch + 1)
            save_checkpoint()
        redraw(out)
        log.close()
        if tb is not None:
            tb.close()
    write_report(out)
    if skipped:
        print(f"Skipped {skipped} steps with non-finite values (--on-nan skip)")
    return TrainResult(out, step, exit_code, skipped)


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

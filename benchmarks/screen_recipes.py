"""Screen a training recipe at equal steps on a shared CPU: quality curve plus its step cost.

    python benchmarks/screen_recipes.py --preset cpu-demo --set train.n_critic=1 \
        --steps 600 --eval-every 100 --eval-n 2000 --decays 0.99,0.999 --out screen.jsonl

One run trains the recipe for --steps generator steps and, every --eval-every steps, evaluates
the raw generator and one EMA copy per decay (FID etc. on --eval-n samples, the project's
evaluator; evaluation time is excluded). Each step's wall time and this process's CPU time are
recorded: on a machine shared with other jobs the CPU time per step divided by the threads is
the steadier estimate of what the step costs on an idle machine. docs/sweep-cpu.md turns
these into quality at equal wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from wganlab.base.device import seed_everything
from wganlab.config import apply_overrides, get_preset, validate
from wganlab.data import load_dataset, sample_z
from wganlab.generate import sample
from wganlab.metrics.evaluate import evaluate_images
from wganlab.models import build_models
from wganlab.training.ema import GeneratorEMA, ramped_decay
from wganlab.training.optim import make_optimizer
from wganlab.training.runner import make_runner
from wganlab.training.schedule import epoch_order, steps_per_epoch


class AveragedBuffersEMA(GeneratorEMA):
    """The alternative to copying: BatchNorm's float buffers averaged like the weights."""

    @torch.no_grad()
    def update(self) -> None:
        beta = float(ramped_decay(self.decay, self.averaged.n_averaged))
        old = [(e, e.clone()) for e in self._ema_buffers if e.is_floating_point()]
        super().update()  # weights averaged, buffers copied from the raw network
        for e, before in old:  # average the float buffers instead of copying them
            e.copy_(beta * before + (1 - beta) * e)


KEYS = ("fid", "kid_mean", "precision", "recall", "coverage", "modes_covered")


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if "," in text:
        return tuple(parse_value(t) for t in text.split(","))
    return {"true": True, "false": False}.get(text, text)


def build_config(preset: str, settings: list[str], seed: int):
    overrides: dict = {}
    for item in settings:
        key, value = item.split("=", 1)
        section, name = key.split(".")
        overrides.setdefault(section, {})[name] = parse_value(value)
    cfg = apply_overrides(get_preset(preset), overrides)
    cfg.train.seed, cfg.train.minutes, cfg.train.epochs = seed, None, None
    cfg.run.dataset = "fashion-mnist"
    return validate(cfg), overrides


@torch.no_grad()
def precise_bn(generator, cfg, batches: int = 8, size: int = 256):
    """A copy whose BatchNorm statistics are recomputed for its current weights (a cumulative
    average over fresh z), instead of the running averages kept during training."""
    g = copy.deepcopy(generator).train()
    for m in g.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    rng = torch.Generator().manual_seed(123)
    for _ in range(batches):
        g(sample_z(size, cfg.model.z_dim, cfg.train.z_dist, rng))
    return g


def evaluate(generator, cfg, n: int) -> dict:
    fake = sample(generator, n, seed=0, z_dist=cfg.train.z_dist)  # in inference mode
    record = evaluate_images(fake, "fashion-mnist", "test", seed=0)
    return {k: float(record[k]) for k in KEYS}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="cpu-demo")
    ap.add_argument("--set", action="append", default=[], help="section.field=value")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-n", type=int, default=2000)
    ap.add_argument("--decays", default="0.99,0.999")
    ap.add_argument("--avg-buffers", type=float, default=None,
                    help="also an EMA with this decay that averages BatchNorm buffers")
    ap.add_argument("--precise-bn", action="store_true",
                    help="also evaluate copies with BatchNorm statistics recomputed")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default=None)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    cfg, overrides = build_config(a.preset, a.set, a.seed)
    seed_everything(cfg.train.seed, False)
    data = load_dataset("fashion-mnist", "train", None, None)
    cfg.model.image_shape = tuple(int(s) for s in data.images.shape[1:])
    device = torch.device("cpu")
    generator, critic = build_models(cfg.model, cfg.model.image_shape)
    g_opt = make_optimizer(cfg, generator.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, critic.parameters(), cfg.train.c_lr)
    noise = torch.Generator().manual_seed(cfg.train.seed + 1)
    runner = make_runner(cfg, generator, critic, g_opt, c_opt, data.images, noise, device)
    emas = {f"ema{d}": GeneratorEMA(generator, float(d)) for d in a.decays.split(",") if d}
    if a.avg_buffers:
        emas[f"ema{a.avg_buffers}-avgbuf"] = AveragedBuffersEMA(generator, a.avg_buffers)
    per_epoch = steps_per_epoch(len(data.images), cfg)
    label = a.label or " ".join([a.preset, *a.set])
    wall = cpu = 0.0
    out = Path(a.out)
    with out.open("a") as f:
        for step in range(1, a.steps + 1):
            epoch, k = divmod(step - 1, per_epoch)
            order = epoch_order(len(data.images), cfg.train.seed, epoch, device)
            first = k * (1 if cfg.train.shared_step else cfg.train.n_critic)
            w0, c0 = time.perf_counter(), time.process_time()
            runner.step(order, first)
            for ema in emas.values():
                ema.update()
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            if step % a.eval_every == 0 or step == a.steps:
                row = {"label": label, "preset": a.preset, "overrides": overrides,
                       "seed": a.seed, "step": step, "wall_s": round(wall, 2),
                       "cpu_s": round(cpu, 2), "threads": torch.get_num_threads(),
                       "raw": evaluate(generator, cfg, a.eval_n)}
                for name, ema in emas.items():
                    row[name] = evaluate(ema.module, cfg, a.eval_n)
                if a.precise_bn:
                    row["raw-preciseBN"] = evaluate(precise_bn(generator, cfg), cfg, a.eval_n)
                    last = list(emas.values())[-1] if emas else None
                    if last is not None:
                        row["ema-preciseBN"] = evaluate(precise_bn(last.module, cfg), cfg,
                                                        a.eval_n)
                f.write(json.dumps(row) + "\n")
                f.flush()
                best = min((v["fid"], n) for n, v in row.items() if isinstance(v, dict)
                           and "fid" in v)
                print(f"{label} step {step}: {wall / step:.3f} s/step wall, "
                      f"{cpu / step / row['threads']:.3f} cpu/thread; raw FID "
                      f"{row['raw']['fid']:.0f}; best {best[1]} {best[0]:.0f}", flush=True)


if __name__ == "__main__":
    main()

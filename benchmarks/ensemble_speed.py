"""Ensemble throughput: N members in one step (--ensemble N) against one model.

    python benchmarks/ensemble_speed.py --out OUT                  # CUDA: N = 1 2 4 8 16
    python benchmarks/ensemble_speed.py --device cpu --members 1 2 4 --out OUT
    python benchmarks/ensemble_speed.py --quick --device cpu --out OUT   # seconds: a smoke run

For each preset and N, the run's own step (training/runner.make_runner: one CUDA graph on a
GPU, eager on the CPU) on random images at --batch-size images per member, from the same
TrainState a `wganlab train` builds: --warmup steps (warm-up and capture), then the mean over
--repeats timings of --steps steps. Reports ms per step, member-steps per second, the step
time against N = 1 (target on an H100/H200: 8 members within 2x, 16 within 3x) and peak
device memory (CUDA). N = 1 is the single-model step itself, not an ensemble of one.
On CUDA it first checks the ensemble's CUDA graph against its eager step (`graph_check`: the
same members after a few steps, to float rounding; dropout excepted). Writes
OUT/ensemble-speed-<device>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from wganlab.config import apply_overrides, get_preset
from wganlab.training.runner import make_runner
from wganlab.training.schedule import member_orders
from wganlab.training.state import TrainState

QUICK = {"model": {"g_filters": 8, "c_filters": 4, "z_dim": 8, "image_shape": (1, 8, 8)}}


def measure(preset: str, members: int, args, device: torch.device) -> dict:
    """One (preset, N) case: ms per step, member-steps per second, peak memory."""
    shape = (1, 8, 8) if args.quick else (1, 28, 28)
    overrides = {"train": {"ensemble": members, "batch_size": args.batch_size, "seed": 1},
                 "run": {"device": device.type}, "speed": {"ensemble_vmap": not args.loop}}
    if args.quick:
        overrides["model"] = QUICK["model"]
    else:
        overrides["model"] = {"image_shape": shape}
    cfg = apply_overrides(get_preset(preset), overrides)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
    n_images = args.batch_size * per_step * 4
    images = torch.randint(0, 256, (n_images, *shape), dtype=torch.uint8, device=device)
    state = TrainState.build(cfg, device)
    runner = make_runner(cfg, state.generator, state.critic, state.g_opt, state.c_opt, images,
                         state.noise, device)
    order = member_orders(n_images, cfg, 0, device)
    k = 0

    def steps(n: int) -> None:
        nonlocal k
        for _ in range(n):
            runner.step(order, (k % 4) * per_step)
            state.after_step()
            k += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    steps(args.warmup)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        steps(args.steps)
        times.append((time.perf_counter() - start) / args.steps)
    ms = 1e3 * sorted(times)[len(times) // 2]
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"preset": preset, "members": members, "batch_size": args.batch_size,
            "device": str(device), "step_mode": runner.mode, "ms_per_step": ms,
            "member_steps_per_s": members * 1e3 / ms, "peak_mib": peak,
            "vmap": cfg.speed.ensemble_vmap}


def graph_check(preset: str, device: torch.device, members: int = 2, steps: int = 6) -> dict:
    """The largest relative weight difference between an ensemble trained `steps` steps by
    the CUDA-graph runner and by the eager runner, from the same seeds and data."""
    finals = {}
    for graph in (True, False):
        cfg = apply_overrides(get_preset(preset), {
            "train": {"ensemble": members, "batch_size": 64}, "model": {"dropout": 0.0},
            "speed": {"cuda_graph": graph}, "run": {"device": device.type}})
        n = 64 * cfg.train.n_critic * 4
        images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0)).to(device)
        state = TrainState.build(apply_overrides(cfg, {"model": {"image_shape": (1, 28, 28)}}),
                                 device)
        runner = make_runner(cfg, state.generator, state.critic, state.g_opt, state.c_opt,
                             images, state.noise, device)
        order = member_orders(n, cfg, 0, device)
        for k in range(steps):
            runner.step(order, (k % 4) * (1 if cfg.train.shared_step else cfg.train.n_critic))
        finals[runner.mode] = [p.detach().clone() for p in state.generator.parameters()]
    a, b = finals.get("cuda-graph"), finals.get("eager")
    worst = max(float((x - y).norm() / y.norm()) for x, y in zip(a, b)) if a and b else None
    return {"preset": preset, "members": members, "steps": steps, "modes": sorted(finals),
            "max_relative_difference": worst}


def table(rows: list[dict]) -> str:
    """Markdown: each case against the same preset's N = 1."""
    lines = ["| preset | N | step mode | ms/step | member-steps/s | step time vs N=1 | "
             "member-steps/s vs N=1 | peak MiB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        one = next(x for x in rows if x["preset"] == r["preset"] and x["members"] == 1)
        peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
        lines.append(f"| {r['preset']} | {r['members']} | {r['step_mode']} | "
                     f"{r['ms_per_step']:.2f} | {r['member_steps_per_s']:.1f} | "
                     f"{r['ms_per_step'] / one['ms_per_step']:.2f}x | "
                     f"{r['member_steps_per_s'] / one['member_steps_per_s']:.2f}x | {peak} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Measure every preset x N; print and write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="ensemble-speed")
    p.add_argument("--device", default="cuda")
    p.add_argument("--presets", nargs="+", default=["fast", "wgan-gp"])
    p.add_argument("--members", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="tiny networks, N 1 and 2, 2 steps")
    p.add_argument("--loop", action="store_true",
                   help="members one after another (--no-ensemble-vmap), not stacked")
    args = p.parse_args(argv)
    if args.quick:
        args.members, args.batch_size = [1, 2], 8
        args.warmup, args.steps, args.repeats = 1, 2, 1
    device = torch.device(args.device)
    if 1 not in args.members:
        args.members = [1, *args.members]
    checks = [graph_check(p, device) for p in args.presets] if device.type == "cuda" else []
    for check in checks:
        print(f"graph vs eager, {check['preset']} x{check['members']}: modes {check['modes']}, "
              f"largest relative weight difference {check['max_relative_difference']}")
    rows = []
    for preset in args.presets:
        for n in args.members:
            rows.append(measure(preset, n, args, device))
            print(f"{preset} N={n}: {rows[-1]['ms_per_step']:.1f} ms/step", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else "cpu"}
    name = f"ensemble-speed-{device.type}" + ("-loop" if args.loop else "")
    (out / f"{name}.json").write_text(json.dumps({"meta": meta, "cases": rows,
                                                         "graph_checks": checks}, indent=2))
    text = table(rows)
    (out / f"{name}.md").write_text(text + "\n")
    print(text)
    print(f"load average {meta['load_average']}, {meta['threads']} threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`wganlab bench`: the project's training step against a plain eager step, in the same run.

For each preset x batch size x device it builds the networks once, gives the baseline
(bench.baseline.PlainStep), the project's step (runner.make_runner, what `wganlab train`
runs, with the default SpeedConfig) and each chosen variant of it (speed settings flipped, see
VARIANTS) identical copies, warms them up, then times them in interleaved repeats (in order
in even repeats, reversed in odd ones) so that drift in the machine's speed hits all alike.

Reported per variant: median ms per generator step (with min and max), real images per second
(batch_size x batches per step / time), FLOPs of one step (torch.utils.flop_counter, counted
in the first warm-up step), achieved TFLOP/s, and peak memory above what was allocated before
the variant's first step (data and all weights): on CUDA torch.cuda.max_memory_allocated over
the warm-up steps (the graph's private pool included); on CPU the peak of the running sum of
torch.profiler's allocation events during the first step (optimizer-state creation included).
"""

from __future__ import annotations

import copy
import statistics
import time
import types
from dataclasses import replace

import torch

from ..base.device import fit_threads
from ..config import SpeedConfig, apply_overrides, get_preset
from ..data import load_dataset
from ..errors import ConfigError
from ..models import build_models
from ..training.fast import WARMUP_STEPS
from ..training.runner import make_runner
from .baseline import PlainStep, check_recipe
from .measure import cpu_step_peak_bytes, flop_counter, load_average, machine_info

DEFAULTS = dict(presets=["seed", "wgan-gp"], batch_sizes=[128, 1024], repeats=3, steps=2,
                dataset="fashion-mnist")
# --quick: tiny networks on CPU; flags given beside it still win.
QUICK = dict(presets=["seed", "wgan-gp"], batch_sizes=[8], devices=["cpu"], repeats=2,
             steps=1, warmup=1, dataset="synthetic", g_filters=16, c_filters=8)


# Rows beside "baseline" and "ours" (the defaults): each flips settings of SpeedConfig, so
# each row's worth is its time against "ours" and "baseline" in the same run. (A critic pass
# over real, fake and interpolates concatenated was dropped: 75.3 ms against 38.6 ms per
# wgan-gp step on an H200.)
VARIANTS = {
    "ours": SpeedConfig(),
    "ours-eager": SpeedConfig(cuda_graph=False),  # what the graph saves
    "ours-unfused": SpeedConfig(fused_optimizer=False),  # one optimizer kernel per tensor
    "ours-no-cudnn-benchmark": SpeedConfig(cudnn_benchmark=False),
    "ours+channels-last": SpeedConfig(channels_last=True),
    "ours+bf16": SpeedConfig(bf16=True),
}
CUDA_ONLY = {"ours-eager", "ours-no-cudnn-benchmark", "ours+bf16"}  # no-ops elsewhere


def pick_variants(names: list[str] | None, bf16: bool) -> list[str]:
    """The rows to time: "all", or names from VARIANTS ("ours" always comes first)."""
    names = list(VARIANTS) if names == ["all"] else list(names or [])
    if bf16 and "ours+bf16" not in names:
        names.append("ours+bf16")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ConfigError(f"--variants: unknown {', '.join(unknown)}; choose from all, "
                          f"{', '.join(VARIANTS)}")
    return ["ours"] + [n for n in names if n != "ours"]


def skip_reason(name: str, device: torch.device) -> str:
    """Why a variant row would time the same thing as "ours" here (empty when it would not)."""
    return "CUDA only" if name in CUDA_ONLY and device.type != "cuda" else ""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """One way of running the step, with its own copy of the networks and optimizers."""

    def __init__(self, name, cfg, G, C, images, device, speed: SpeedConfig | None,
                 warmup: int):
        from ..training.optim import make_optimizer

        self.name, self.device, self.n_warmup = name, device, warmup
        G, C = copy.deepcopy(G).to(device), copy.deepcopy(C).to(device)
        if speed is None:
            self.run, self.mode = PlainStep(cfg, G, C, images, device), "eager"
        else:
            g_opt = make_optimizer(cfg, G.parameters(), cfg.train.g_lr)
            c_opt = make_optimizer(cfg, C.parameters(), cfg.train.c_lr)
            noise = torch.Generator(device=device).manual_seed(cfg.train.seed + 1)
            runner = make_runner(replace(cfg, speed=speed), G, C, g_opt, c_opt, images, noise,
                                 device)
            self.runner, self.run = runner, runner.step
            if runner.mode == "cuda-graph":  # time replays only: capture after the warm-up
                self.n_warmup = max(warmup, WARMUP_STEPS + 1)
        self.times: list[float] = []
        self.cpu_times: list[float] = []  # process CPU seconds per step (all threads)
        self.flops = self.peak = 0

    def warm_up(self, positions, order) -> None:
        """Runs the untimed steps: FLOPs counted in the first, peak memory measured."""
        _sync(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
        counter = flop_counter()
        first = next(positions)
        with counter:
            if self.device.type == "cpu":
                self.peak = cpu_step_peak_bytes(lambda: self.run(order, first))
            else:
                self.run(order, first)
        self.flops = counter.get_total_flops()
        for _ in range(self.n_warmup - 1):
            self.run(order, next(positions))
        _sync(self.device)
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - base
        if hasattr(self, "runner"):
            self.mode = self.runner.mode

    def time(self, positions, order, n: int) -> float:
        """Seconds per step over n steps (one block; the device is synchronised around it)."""
        _sync(self.device)
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(n):
            self.run(order, next(positions))
        _sync(self.device)
        per_step = (time.perf_counter() - start) / n
        self.times.append(per_step)
        self.cpu_times.append((time.process_time() - cpu_start) / n)
        return per_step


def _positions(n_images: int, batch: int, per_step: int):
    """First-batch indices of successive steps, wrapping within one epoch order."""
    usable = n_images // batch - per_step + 1
    k = 0
    while True:
        yield (k * per_step) % usable
        k += 1


def prepare_case(preset: str, batch: int, device_name: str, opts):
    """The recipe, networks, data on the device and data order of one case."""
    over = {"train": {"batch_size": batch}}
    if opts.g_filters or opts.c_filters:
        over["model"] = {k: v for k, v in (("g_filters", opts.g_filters),
                                           ("c_filters", opts.c_filters)) if v}
    cfg = apply_overrides(get_preset(preset), over)
    check_recipe(cfg)
    device = torch.device(device_name)
    if opts.dataset == "random":  # speed does not depend on the pixels; no files needed
        data = types.SimpleNamespace(images=torch.randint(
            0, 256, (60_000, 1, 28, 28), dtype=torch.uint8,
            generator=torch.Generator().manual_seed(0)))
    else:
        data = load_dataset(opts.dataset, "train", opts.data_dir, cfg.model.image_shape)
    per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
    if len(data.images) < batch * per_step:
        raise ConfigError(f"--batch-sizes: {batch} x {per_step} batches per step is more than "
                          f"the {len(data.images)} images of {opts.dataset}")
    images = data.images.to(device)
    torch.manual_seed(cfg.train.seed)
    G, C = build_models(cfg.model, tuple(images.shape[1:]))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0)).to(device)
    return cfg, G, C, images, order, per_step, device


def bench_case(preset: str, batch: int, device_name: str, opts) -> dict:
    """Times baseline, ours and the chosen variants for one preset, batch size and device."""
    load_start = load_average()
    cfg, G, C, images, order, per_step, device = prepare_case(preset, batch, device_name, opts)
    specs, skipped = [("baseline", None)], {}
    for name in pick_variants(opts.variants, opts.bf16):
        if why := skip_reason(name, device):
            skipped[name] = why
        else:
            specs.append((name, VARIANTS[name]))
    variants, positions = [], _positions(len(images), batch, per_step)
    for name, speed in specs:  # one at a time, so each one's peak memory is its own
        v = Variant(name, cfg, G, C, images, device, speed, opts.warmup)
        v.warm_up(positions, order)
        variants.append(v)
    for r in range(opts.repeats):
        for v in variants if r % 2 == 0 else variants[::-1]:
            v.time(positions, order, opts.steps)
    baseline, ours = variants[0], variants[1]

    images_per_step = batch * per_step
    out = {"preset": preset, "device": device_name, "batch_size": batch,
           "real_images_per_step": images_per_step, "variants": {}, "skipped": skipped,
           "load_average_1min": {"start": load_start, "end": load_average()}}
    for v in variants:
        ms = statistics.median(v.times) * 1e3
        out["variants"][v.name] = {
            "mode": v.mode, "reason": getattr(getattr(v, "runner", None), "reason", ""),
            "ms_per_step": ms, "ms_min": min(v.times) * 1e3, "ms_max": max(v.times) * 1e3,
            "timed_steps": len(v.times) * opts.steps, "images_per_s": images_per_step / ms * 1e3,
            "cpu_ms_per_step": statistics.median(v.cpu_times) * 1e3,
            "flops_per_step": v.flops, "tflops": v.flops / ms * 1e-9,
            "peak_memory_bytes": v.peak}
    base = out["variants"]["baseline"]["ms_per_step"]
    ours_ms = out["variants"]["ours"]["ms_per_step"]
    for v in out["variants"].values():
        v["speedup"] = base / v["ms_per_step"]
        v["vs_ours"] = ours_ms / v["ms_per_step"]
    # baseline/ours per round, wall clock and CPU time: the views drift cannot tilt. On a
    # busy CPU the CPU-time ratio (work done) is steadier than the wall-clock one.
    out["paired_speedups"] = [b / o for b, o in zip(baseline.times, ours.times)]
    out["paired_cpu_time_ratios"] = [b / o for b, o in zip(baseline.cpu_times,
                                                            ours.cpu_times)]
    return out


def markdown(report: dict) -> str:
    """The report as Markdown: the machine, a row per case x variant, per-round ratios."""
    m = report["machine"]
    loads = [c["load_average_1min"][k] for c in report["cases"] for k in ("start", "end")]
    busy = (f" 1-min load average {min(loads):.1f}-{max(loads):.1f} during the run."
            if None not in loads and loads else "")
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), "
             f"torch {m['torch']}" + (f", {m['gpu']}" if "gpu" in m else "") + "." + busy, "",
             "| preset | device | batch | variant | mode | ms/step (min-max) | CPU ms/step | "
             "real img/s | GFLOP/step | TFLOP/s | peak MiB | speed-up | vs ours |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in report["cases"]:
        for name, v in case["variants"].items():
            lines.append(
                f"| {case['preset']} | {case['device']} | {case['batch_size']} | {name} | "
                f"{v['mode']} | {v['ms_per_step']:.1f} ({v['ms_min']:.1f}-{v['ms_max']:.1f}) | "
                f"{v['cpu_ms_per_step']:.1f} | {v['images_per_s']:,.0f} | "
                f"{v['flops_per_step'] / 1e9:.1f} | "
                f"{v['tflops']:.3f} | {v['peak_memory_bytes'] / 2**20:,.0f} | "
                f"{v['speedup']:.2f}x | {v['vs_ours']:.2f}x |")
    lines += ["", "Baseline/ours per interleaved round (wall clock; process CPU time):", ""]
    for case in report["cases"]:
        wall = " ".join(f"{x:.2f}" for x in case["paired_speedups"])
        cpu = " ".join(f"{x:.2f}" for x in case["paired_cpu_time_ratios"])
        lines.append(f"- {case['preset']}, {case['device']}, batch {case['batch_size']}: "
                     f"{wall}; {cpu}")
    skipped = [f"- {c['preset']}, {c['device']}, batch {c['batch_size']}: {name} ({why})"
               for c in report["cases"] for name, why in c.get("skipped", {}).items()]
    if skipped:
        lines += ["", "Rows not timed (they would time the same step as ours):", "", *skipped]
    return "\n".join(lines) + "\n"


def run_bench(opts) -> dict:
    """Checks the devices, sets torch's CPU threads, then times every device x preset x batch."""
    for d in opts.devices:
        if d == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--devices: cuda asked for, but PyTorch sees no CUDA device")
        if d not in ("cpu", "cuda"):
            raise ConfigError(f"--devices: choose cpu and/or cuda; got {d!r}")
    if opts.threads:
        torch.set_num_threads(opts.threads)
    else:
        fit_threads()
    cases = [bench_case(p, b, d, opts) for d in opts.devices for p in opts.presets
             for b in opts.batch_sizes]
    settings = {k: getattr(opts, k) for k in ("repeats", "steps", "warmup", "dataset", "bf16",
                                              "g_filters", "c_filters", "variants")}
    return {"machine": machine_info(opts.devices), "settings": settings, "cases": cases}

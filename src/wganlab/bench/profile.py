"""`wganlab bench --profile`: where one training step spends its time, by op or kernel.

For each case (preset x batch size x device) and chosen variant it warms the step up as the
benchmark does (on CUDA the graph is captured by then), runs `torch.profiler` over a few
steps and lists the ops with the most self time per step: on CUDA the GPU kernels (self
device time), on the CPU the aten ops (self CPU time). A graph replay shows its kernels on
the GPU; on the host it is one cudaGraphLaunch.
"""

from __future__ import annotations

from torch.profiler import ProfilerActivity, profile

from .measure import quiet_profiler
from .speed import VARIANTS, Variant, _positions, _sync, pick_variants, prepare_case, skip_reason


def self_time_us(event, on_cuda: bool) -> float:
    """An averaged profiler event's self time in microseconds, on the device or the CPU."""
    if on_cuda:
        return float(getattr(event, "self_device_time_total",
                             getattr(event, "self_cuda_time_total", 0.0)))
    return float(event.self_cpu_time_total)


def top_ops(prof, on_cuda: bool, steps: int, top: int) -> dict:
    """The `top` ops by self time, per step, with their share of all self time."""
    events = [e for e in prof.key_averages() if self_time_us(e, on_cuda) > 0]
    total = sum(self_time_us(e, on_cuda) for e in events)
    events.sort(key=lambda e: self_time_us(e, on_cuda), reverse=True)
    rows = [{"name": e.key, "calls_per_step": e.count / steps,
             "self_ms_per_step": self_time_us(e, on_cuda) / steps / 1e3,
             "share": self_time_us(e, on_cuda) / total} for e in events[:top]]
    return {"clock": "device" if on_cuda else "cpu", "self_ms_per_step": total / steps / 1e3,
            "ops": rows}


def profile_case(preset: str, batch: int, device_name: str, opts) -> list[dict]:
    """Top ops per step of each chosen variant that applies, for one preset, batch and device."""
    cfg, G, C, images, order, per_step, device = prepare_case(preset, batch, device_name, opts)
    positions = _positions(len(images), batch, per_step)
    on_cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])
    out = []
    for name in pick_variants(opts.variants, opts.bf16):
        if skip_reason(name, device):
            continue
        v = Variant(name, cfg, G, C, images, device, VARIANTS[name], opts.warmup)
        v.warm_up(positions, order)
        _sync(device)
        with quiet_profiler(), profile(activities=activities) as prof:
            for _ in range(opts.steps):
                v.run(order, next(positions))
            _sync(device)
        out.append({"preset": preset, "device": device_name, "batch_size": batch,
                    "variant": name, "mode": v.mode,
                    **top_ops(prof, on_cuda, opts.steps, opts.profile_top)})
    return out


def run_profile(opts) -> dict:
    """Profiles of every device x preset x batch size, as {"profiles": [...]}."""
    cases = [p for d in opts.devices for preset in opts.presets for b in opts.batch_sizes
             for p in profile_case(preset, b, d, opts)]
    return {"profiles": cases}


def markdown(report: dict) -> str:
    """One Markdown table of top ops per profiled case and variant."""
    lines = []
    for p in report["profiles"]:
        lines += [f"### {p['preset']}, {p['device']}, batch {p['batch_size']}, {p['variant']} "
                  f"({p['mode']}): {p['self_ms_per_step']:.2f} ms of {p['clock']} self time "
                  "per step", "",
                  "| op | calls/step | self ms/step | share |", "|---|---|---|---|"]
        for op in p["ops"]:
            name = op["name"] if len(op["name"]) <= 70 else op["name"][:67] + "..."
            lines.append(f"| `{name}` | {op['calls_per_step']:g} | "
                         f"{op['self_ms_per_step']:.3f} | {op['share']:.1%} |")
        lines.append("")
    return "\n".join(lines)

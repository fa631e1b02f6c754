"""Checks of the CUDA-graph step that need a GPU, in one short run (a few minutes on an H100).

    python benchmarks/gpu_check.py --out $OUT            # on a CUDA machine
    python benchmarks/gpu_check.py --device cpu --quick  # the same code paths, minus capture

1. Correctness: for several recipes, the graph runner (fast.GraphStep: warm-up, capture,
   replays) against the eager runner (runner.EagerStep) from identical weights, data order and
   noise seed; reports the largest relative weight difference after each step. cuDNN may pick
   different kernels in the two runs, so expect ~1e-6..1e-4 in fp32, not zero; dropout draws
   differ between the paths (the graph replays its captured Philox offsets), so the recipes
   with dropout are compared for "finite and moving" only. The "+kernels" recipes run the
   graph with channels_last on (fused Adam and cudnn.benchmark are on in every recipe): same
   maths, other kernels. The "r1" recipe is the R1 penalty (no interpolation draws).
   The "run:" recipes are built as `wganlab train` builds a run (TrainState.build, the
   run's augmentation state and labels): the features added since the graph was last run on
   a GPU, each captured with the rest of the step: --augment and --xflip (draws from the
   augmentation's own stream, registered with the graph), --augment-p auto (p moved on the
   device between replays, as the loop does), a class-conditional model (labels gathered in
   the graph) and an ensemble of 3 members with augmentation (member-major batches, one
   stream and one p per member).
2. --on-nan skip inside the graph: a NaN injected into one replay leaves the weights as they
   were, and the next replay trains again.
3. Speed: `wganlab bench` on the device (seed and wgan-gp, batch 128 and 1024, every variant
   row; benchmarks/gpu_session.sh runs it separately with --no-bench here).
On CPU (--device cpu) part 1 compares the static step run eagerly with the eager runner.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
from pathlib import Path

import torch

from wganlab.cli import main as cli_main
from wganlab.config import SpeedConfig, apply_overrides, get_preset
from wganlab.models import build_models
from wganlab.training import fast, kernels
from wganlab.training.optim import make_optimizer
from wganlab.training.runner import EagerStep, applicable, make_runner
from wganlab.training.schedule import epoch_order, member_orders
from wganlab.training.state import TrainState

KERNELS = {"channels_last": True}
RECIPES = {  # name: (preset, model overrides, graph's speed changes, compared exactly?)
    "seed": ("seed", {"dropout": 0.0}, {}, True),
    "seed+dropout": ("seed", {}, {}, False),
    "wgan-gp": ("wgan-gp", {}, {}, True),
    "wgan-gp+kernels": ("wgan-gp", {}, KERNELS, True),
    "wgan (rmsprop, clip)": ("wgan", {}, {}, True),
    "sngan": ("sngan", {}, {}, True),
    "minibatch-discrimination": ("wgan-gp", {"minibatch_discrimination": True}, {}, True),
    "seed+kernels": ("seed", {"dropout": 0.0}, KERNELS, True),
    "fast+r1": ("fast", {}, {}, True),
}
TRAIN = {"fast+r1": {"penalty": "r1"}}  # train overrides beside the preset's
AUGMENT = {"augment": "translation,cutout,colour", "augment_p": 0.3}
AUTO = {**AUGMENT, "augment_p": "auto"}
RUN_RECIPES = {  # name: (preset, train overrides); built as a run builds them, all exact
    "run: fast+augment+xflip": ("fast", {**AUGMENT, "xflip": True}),
    "run: fast+augment auto": ("fast", AUTO),
    "run: fast-acgan+augment": ("fast-acgan", AUGMENT),
    "run: fast x3+augment auto": ("fast", {**AUTO, "ensemble": 3}),
}
P_WALK = (0.0, 0.5, 1.0, 0.25)  # p set between the steps of the auto recipes (both sides)


def build(recipe, batch, device, steps, on_nan="stop", small=False):
    """The recipe's config and networks, and enough stand-in images for `steps` steps."""
    preset, model, _, _ = RECIPES[recipe]
    if small:
        model = {**model, "g_filters": 16, "c_filters": 8}
    cfg = apply_overrides(get_preset(preset), {
        "model": model, "train": {"batch_size": batch, **TRAIN.get(recipe, {})},
        "run": {"on_nan": on_nan}, "speed": RECIPES[recipe][2]})
    torch.manual_seed(0)
    G, C = build_models(cfg.model, (1, 28, 28))
    per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
    n = max(4096, batch * per_step * steps)  # the runners refuse batches past the data
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1)).to(device)
    return cfg, G, C, images


def state_for(cfg, G, C, images, device):
    G, C = copy.deepcopy(G).to(device), copy.deepcopy(C).to(device)
    g_opt = make_optimizer(cfg, G.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, C.parameters(), cfg.train.c_lr)
    noise = torch.Generator(device=device).manual_seed(5)
    return G, C, g_opt, c_opt, images, noise, device


def weights(G, C):
    return torch.cat([p.detach().flatten().float() for p in [*G.parameters(),
                                                            *C.parameters()]])


def runners(cfg, a, b, device, extra_a=None, extra_b=None):
    """An eager runner on the state `a` (standard kernels) and, on `b`, the runner `wganlab
    train` picks: the CUDA graph on a GPU (asserted), else the same static step uncaptured.
    a, b: (generator, critic, g_opt, c_opt, images, noise, device); extra_*: augment_state
    and labels. Returns (eager, other, notes)."""
    eager = EagerStep(dataclasses.replace(cfg, speed=SpeedConfig()), *a, **(extra_a or {}))
    for opt in (a[2], a[3]):  # the same optimizer arithmetic on both sides
        kernels.prepare_optimizer(opt, capturable=device.type == "cuda", fused=True)
    if device.type == "cuda":
        other = make_runner(cfg, *b, **(extra_b or {}))
        assert other.mode == "cuda-graph", other.reason
        return eager, other, other.notes
    speed, notes = applicable(cfg, device)  # what make_runner does, less the graph
    for opt in (b[2], b[3]):
        kernels.prepare_optimizer(opt, capturable=False, fused=True)
    if speed.channels_last:
        kernels.to_channels_last(b[0], b[1])
    static = fast.StaticStep(cfg, *b, **(extra_b or {}))

    class Uncaptured:
        mode = "static (uncaptured)"

        def step(self, order, first):
            static.load(order, first)
            values = static()  # names its values (static.keys) on the first call
            return dict(zip(static.keys, values))

    return eager, Uncaptured(), notes


def step_both(eager, other, a, b, order, per_step, steps, before=lambda i: None):
    """`steps` steps of each runner; per step, how far b's weights are from a's."""
    start, rows = weights(b[0], b[1]), []
    for i in range(steps):
        before(i)
        eager.step(order, i * per_step)
        terms = other.step(order, i * per_step)
        wa, wb = weights(a[0], a[1]), weights(b[0], b[1])
        rows.append({"step": i + 1, "rel_diff": float((wa - wb).norm() / wa.norm()),
                     "finite": bool(torch.isfinite(wb).all()),
                     "moved": float((wb - start).norm()),
                     "nonfinite_flag": float(terms["nonfinite"].max())})
    return rows


def compare(recipe, batch, device, steps, small):
    cfg, G, C, images = build(recipe, batch, device, steps, small=small)
    order = epoch_order(len(images), 1, 0, device)
    per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
    a, b = state_for(cfg, G, C, images, device), state_for(cfg, G, C, images, device)
    eager, other, notes = runners(cfg, a, b, device)
    rows = step_both(eager, other, a, b, order, per_step, steps)
    return {"recipe": recipe, "mode": other.mode, "exact": RECIPES[recipe][3],
            "speed": RECIPES[recipe][2], "notes": notes, "rows": rows}


def compare_run(recipe, batch, device, steps, small):
    """A RUN_RECIPES entry: two identical runs' states built as `wganlab train` builds them,
    one stepped eagerly, the other by the runner the run would pick."""
    preset, train = RUN_RECIPES[recipe]
    model = {"image_shape": (1, 28, 28), **({"g_filters": 16, "c_filters": 8} if small else {})}
    if preset == "fast-acgan":
        model["class_names"] = tuple(str(k) for k in range(10))
    cfg = apply_overrides(get_preset(preset), {"model": model,
                                               "train": {"batch_size": batch, **train}})
    n = max(4096, batch * steps)
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g).to(device)
    labels = (torch.randint(0, 10, (n,), generator=g).to(device)
              if cfg.model.conditional != "none" else None)
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(TrainState.build(cfg, device))
    a, b = ((s.generator, s.critic, s.g_opt, s.c_opt, images, s.noise, device) for s in states)
    extras = [{"augment_state": s.extras.get("augment"), "labels": labels} for s in states]
    eager, other, notes = runners(cfg, a, b, device, *extras)

    def walk_p(i):  # auto's p moved between steps, on the device, as the loop's controller does
        if cfg.train.augment_p == "auto":
            for s in states:
                s.extras["augment"].p.fill_(P_WALK[i % len(P_WALK)])

    per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
    rows = step_both(eager, other, a, b, member_orders(n, cfg, 0, device), per_step, steps,
                     walk_p)
    return {"recipe": recipe, "mode": other.mode, "exact": True, "speed": {}, "notes": notes,
            "rows": rows}


def skip_check(device, small):
    """A NaN in one replay's critic output must leave every weight as it was."""
    cfg, G, C, images = build("wgan-gp", 64, device, 8, on_nan="skip", small=small)
    state = state_for(cfg, G, C, images, device)
    scale = torch.ones((), device=device)  # a static input the hook reads on the device
    state[1].register_forward_hook(lambda mod, inp, out: out * scale)
    runner = make_runner(cfg, *state)
    order = epoch_order(len(images), 1, 0, device)
    for i in range(fast.WARMUP_STEPS + 2):
        runner.step(order, i * 5)
    before = weights(state[0], state[1])
    scale.fill_(float("nan"))
    bad = runner.step(order, 30)
    kept = bool(torch.equal(before, weights(state[0], state[1])))
    scale.fill_(1.0)
    good = runner.step(order, 35)
    moved = not torch.equal(before, weights(state[0], state[1]))
    return {"mode": runner.mode, "flagged": float(bad["nonfinite"]) == 1.0,
            "weights_kept": kept, "trains_after": moved,
            "next_flag": float(good["nonfinite"])}


def run(args) -> int:
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    steps, batch = (3, 16) if args.quick else (8, 128)
    report = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "compare": [], "skip": None}
    for recipe in [r for r in [*RECIPES, *RUN_RECIPES] if r.startswith(args.only)]:
        check = compare if recipe in RECIPES else compare_run
        try:
            report["compare"].append(check(recipe, batch, device, steps, args.quick))
        except Exception as e:  # keep going: one recipe's failure is a finding, not the end
            report["compare"].append({"recipe": recipe, "error": f"{type(e).__name__}: {e}"})
    if device.type == "cuda" and not args.only:
        report["skip"] = skip_check(device, args.quick)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"{'recipe':28} {'mode':20} worst rel diff   finite  moved")
    for c in report["compare"]:
        if "error" in c:
            print(f"{c['recipe']:28} ERROR {c['error'][:150]}")
            continue
        worst = max(r["rel_diff"] for r in c["rows"])
        print(f"{c['recipe']:28} {c['mode']:20} {worst:14.2e}   "
              f"{all(r['finite'] for r in c['rows'])!s:6}  {c['rows'][-1]['moved'] > 0}"
              + ("" if c["exact"] else "  (dropout: not compared)")
              + "".join(f"  ({n})" for n in c["notes"]))
    print("on-nan skip in the graph:", report["skip"])
    if device.type == "cuda" and not args.no_bench:
        return cli_main(["bench", "--devices", "cuda", "--dataset", "random",
                         "--variants", "all", "--batch-sizes", "128", "1024",
                         "--repeats", "3", "--steps", "10",
                         "--json", str(out / "bench-cuda.json"),
                         "--markdown", str(out / "bench-cuda.md")])
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="gpu-check")
    p.add_argument("--quick", action="store_true", help="small networks, batch 16, 3 steps")
    p.add_argument("--no-bench", action="store_true")
    p.add_argument("--only", default="", metavar="PREFIX",
                   help='only the recipes named so ("run:": the run-built ones); no skip check')
    sys.exit(run(p.parse_args()))

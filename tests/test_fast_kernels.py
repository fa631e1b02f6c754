"""The speed settings (config.SpeedConfig, training/kernels.py): each one computes what the
standard step computes (within float rounding), checked against the standard path and against
values by hand; they are flags, saved in config.json, kept on resume and named in run.json."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from fastrun import CPU, Run, setup
from wganlab.config import SpeedConfig, apply_overrides, get_preset
from wganlab.models import build_models
from wganlab.training import kernels
from wganlab.training.runner import applicable, make_runner

pytestmark = pytest.mark.usefixtures("one_thread")


def sgd(run):
    """The run with SGD: a weight change linear in the gradient, so rounding differences stay
    rounding-sized (Adam's first steps move a weight by lr * sign(gradient), which flips on
    rounding for a gradient that is zero in exact arithmetic, such as the critic's last bias)."""
    run.g_opt = torch.optim.SGD(run.G.parameters(), lr=1e-2)
    run.c_opt = torch.optim.SGD(run.C.parameters(), lr=1e-2)
    return run


def run_steps(run, speed, n=2):
    """n eager steps through make_runner (as train() runs them) with the speed settings
    `speed` (a dict); the runner and the logged rows."""
    runner = make_runner(run.with_speed(**speed), *run.args()[1:])
    torch.manual_seed(7)
    return runner, [runner.step(run.order, i * run.per_step) for i in range(n)]


def assert_same_training(a, b, rows_a, rows_b, rtol=1e-4, atol=1e-5):
    for x, y in zip(a.params(), b.params()):
        torch.testing.assert_close(x, y, rtol=rtol, atol=atol)
    for ra, rb in zip(rows_a, rows_b):
        assert set(ra) == set(rb)
        for key in ra:
            torch.testing.assert_close(ra[key].float(), rb[key].float(), rtol=1e-4, atol=1e-5)
    assert torch.equal(a.noise.get_state(), b.noise.get_state())  # the same draws, in order


# The fused optimizer.

def test_fused_adam_two_steps_by_hand(monkeypatch):
    calls = []
    fused = torch._fused_adam_
    monkeypatch.setattr(torch, "_fused_adam_", lambda *a, **k: calls.append(1) or fused(*a, **k))
    w = nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.5, 0.9))
    kernels.prepare_optimizer(opt, capturable=False, fused=True)
    m = v = 0.0
    want = 1.0
    for step, g in enumerate((0.5, 0.25), start=1):  # Kingma & Ba, Algorithm 1
        w.grad = torch.tensor([g])
        opt.step()
        m, v = 0.5 * m + 0.5 * g, 0.9 * v + 0.1 * g * g
        want -= 0.1 * (m / (1 - 0.5**step)) / (math.sqrt(v / (1 - 0.9**step)) + 1e-8)
    assert len(calls) == 2  # the fused kernel ran, not the per-tensor loop
    assert float(w.detach()) == pytest.approx(want, rel=1e-6)
    assert want == pytest.approx(0.9 - 0.1 * (1 / 3) / math.sqrt(0.02875 / 0.19), rel=1e-6)


@pytest.mark.parametrize("preset", ["wgan-gp", "wgan"])  # Adam; RMSprop with foreach
def test_fused_optimizer_trains_like_the_per_tensor_one(preset):
    cfg, G, C, images = setup(preset)
    plain, fused = Run(cfg, G, C, images), Run(cfg, G, C, images)
    _, want = run_steps(plain, dict(fused_optimizer=False))
    runner, got = run_steps(fused, dict(fused_optimizer=True))
    group = fused.c_opt.param_groups[0]
    assert group.get("fused") is True or group["foreach"] is True
    assert_same_training(plain, fused, want, got)


# channels_last.

def rgb_setup():
    cfg = apply_overrides(get_preset("wgan-gp"), {
        "model": dict(g_filters=8, c_filters=4, n_blocks=1, image_shape=(3, 8, 8)),
        "train": dict(batch_size=4)})
    torch.manual_seed(0)
    G, C = build_models(cfg.model, (3, 8, 8))
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    return cfg, G, C, images


def test_channels_last_trains_like_nchw_in_nhwc():
    cfg, G, C, images = rgb_setup()
    nchw, nhwc = Run(cfg, G, C, images), sgd(Run(cfg, G, C, images))
    _, want = run_steps(sgd(nchw), {})
    seen = []
    for conv in [m for m in nhwc.C.modules() if isinstance(m, nn.Conv2d)][:1]:
        conv.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    _, got = run_steps(nhwc, dict(channels_last=True))
    assert_same_training(nchw, nhwc, want, got)
    nhwc_format = torch.channels_last
    assert seen and all(x.is_contiguous(memory_format=nhwc_format) and not x.is_contiguous()
                        for x in seen)
    weights = [p for p in [*nhwc.G.parameters(), *nhwc.C.parameters()] if p.dim() == 4]
    assert weights and all(not p.is_contiguous() for p in weights)
    adam = Run(cfg, G, C, images)
    run_steps(adam, dict(channels_last=True), n=1)
    for opt in (adam.g_opt, adam.c_opt):  # Adam's moments in the weights' layout
        assert opt.state and all(state["exp_avg"].stride() == p.stride()
                                 for p, state in opt.state.items())


def test_optimizer_state_follows_the_weights_layout():
    w = nn.Parameter(torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last))
    opt = torch.optim.Adam([w])
    opt.state[w] = {"step": torch.tensor(1.0), "exp_avg": torch.randn(2, 3, 4, 4)}
    before = opt.state[w]["exp_avg"].clone()
    kernels.match_state_layout(opt)
    assert opt.state[w]["exp_avg"].stride() == w.stride()
    assert torch.equal(opt.state[w]["exp_avg"], before)


# cudnn.benchmark.

def test_cudnn_benchmark_is_on_only_while_the_step_runs():
    cfg, G, C, images = setup("wgan-gp")
    run = Run(cfg, G, C, images)
    seen = []
    run.C.register_forward_pre_hook(lambda m, inp: seen.append(torch.backends.cudnn.benchmark))
    before = torch.backends.cudnn.benchmark
    run.eager(cudnn_benchmark=True).step(run.order, 0)
    assert seen and all(seen) and torch.backends.cudnn.benchmark == before is False
    seen.clear()
    run.eager(cudnn_benchmark=False).step(run.order, 5)
    assert seen and not any(seen)


def test_switches_that_cannot_apply_are_dropped_and_said():
    cfg, _, _, _ = setup("wgan-gp")
    speed, notes = applicable(cfg, CPU)
    assert not speed.cudnn_benchmark and notes == []  # no cuDNN on a CPU: nothing to say
    strict = apply_overrides(cfg, {"run": {"deterministic": True}})
    speed, notes = applicable(strict, torch.device("cuda", 0))
    assert not speed.cudnn_benchmark and notes == ["cudnn-benchmark not used: --deterministic"]
    speed, _ = applicable(cfg, torch.device("cuda", 0))
    assert speed == SpeedConfig(ensemble_vmap=True)  # the default, decided for CUDA


def test_static_step_passes_the_switches_on():
    cfg, G, C, images = setup("wgan-gp")
    eager, static = Run(cfg, G, C, images), Run(cfg, G, C, images)
    kernels.to_channels_last(eager.G, eager.C)
    kernels.to_channels_last(static.G, static.C)
    want = eager.eager(channels_last=True).step(eager.order, 0)
    got = static.run_static(static.static(channels_last=True), 0)
    for key in want:
        assert torch.equal(got[key], want[key].float()), key


FLAGS = ["--no-fused-optimizer", "--no-cudnn-benchmark", "--channels-last", "--bf16",
         "--no-cuda-graph"]
CHANGED = SpeedConfig(cuda_graph=False, bf16=True, fused_optimizer=False,
                      cudnn_benchmark=False, channels_last=True)


def test_speed_flags_reach_the_config(monkeypatch, tmp_path, tiny_flags):
    from wganlab.cli import main
    from wganlab.training import loop

    got = {}

    def fake_train(cfg, resume, **_):
        got["speed"] = cfg.speed
        return loop.TrainResult(tmp_path, 0)

    monkeypatch.setattr(loop, "train", fake_train)
    assert main(["train", "--out", str(tmp_path / "r"), *tiny_flags]) == 0
    assert got["speed"] == SpeedConfig()
    assert main(["train", "--out", str(tmp_path / "r"), *FLAGS, *tiny_flags]) == 0
    assert got["speed"] == CHANGED


@pytest.mark.slow
def test_speed_is_saved_kept_on_resume_and_may_change(tmp_path, tiny_flags, capsys):
    """config.json carries the speed section; a resume without the flags keeps them; a resume
    may change them (they do not define the run); run.json names what ran."""
    import json

    from wganlab.cli import main

    out = tmp_path / "r"
    assert main(["train", "--out", str(out), "--steps", "1", *FLAGS, *tiny_flags]) == 0
    saved = json.loads((out / "config.json").read_text())["speed"]
    assert saved == dataclasses.asdict(CHANGED)
    assert main(["train", "--out", str(out), "--resume", "--steps", "2"]) == 0
    assert json.loads((out / "config.json").read_text())["speed"] == saved
    ran = json.loads((out / "run.json").read_text())["speed"]
    assert ran["bf16"] is True and ran["channels_last"] is True and ran["cuda_graph"] is False
    assert main(["train", "--out", str(out), "--resume", "--steps", "3", "--no-bf16"]) == 0
    assert json.loads((out / "config.json").read_text())["speed"]["bf16"] is False

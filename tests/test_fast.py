"""The CUDA fast path's static (sync-free) step on the CPU: it must compute exactly what the
eager step computes, read nothing back on the host, and skip non-finite updates on the device.
"""

import sys
import types

import pytest
import torch

from fastrun import CPU, Run, assert_static_equals_eager, setup
from wganlab.config import apply_overrides, get_preset
from wganlab.losses import gradient_penalty
from wganlab.training import fast, kernels, steps
from wganlab.training import runner as runner_module
from wganlab.training.runner import EagerStep, make_runner

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.mark.parametrize("preset,bf16", [("seed", False), ("wgan-gp", False), ("wgan", False),
                                         ("dcgan", False), ("seed", True), ("wgan-gp", True)])
def test_static_step_matches_the_eager_step(preset, bf16):
    # bf16 means one thing on both paths: the same autocast regions, so the same numbers.
    cfg, G, C, images = setup(preset)
    assert_static_equals_eager(Run(cfg, G, C, images), Run(cfg, G, C, images), bf16=bf16)


def test_the_static_step_reads_nothing_back_on_the_host(monkeypatch):
    # A host read of a tensor (bool(), .item(), .tolist()) would stall a graph and fail capture.
    cfg, G, C, images = setup("wgan-gp", on_nan="skip")
    run = Run(cfg, G, C, images)
    step = run.static()

    def refusing(name):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            # CPU optimizers read their step count (.item()); capturable CUDA ones do not.
            if "torch/optim/" in sys._getframe(1).f_code.co_filename.replace("\\", "/"):
                return original(self, *args, **kwargs)
            raise AssertionError(f"Tensor.{name} inside the step")

        return read

    for name in ("__bool__", "item", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, refusing(name))
    run.run_static(step, 0)
    monkeypatch.undo()
    with pytest.raises(AssertionError, match="inside the step"):  # the check does bite
        monkeypatch.setattr(torch.Tensor, "__bool__", refusing("__bool__"))
        EagerStep(*Run(cfg, G, C, images).args()).step(run.order, 0)


def nan_on_call(module, calls):
    """Make `module` return NaN on the listed forward calls (counted from 0)."""
    count = {"n": 0}

    def hook(mod, inputs, output):
        n, count["n"] = count["n"], count["n"] + 1
        return output * float("nan") if n in calls else output

    return module.register_forward_hook(hook)


def test_skip_puts_back_weights_and_optimizer_state():
    cfg, G, C, images = setup("seed", on_nan="skip")
    run = Run(cfg, G, C, images)
    step = run.static()
    run.run_static(step, 0)
    before = run.params()
    state = {k: v.clone() for st in run.g_opt.state.values() for k, v in st.items()}
    handle = nan_on_call(run.C, calls={0})  # the next step's critic(real) is NaN
    row = run.run_static(step, 1)
    handle.remove()
    assert row["nonfinite"] == 1 and not torch.isfinite(row["d_loss"])
    for a, b in zip(before, run.params()):
        assert torch.equal(a, b)
    after = {k: v for st in run.g_opt.state.values() for k, v in st.items()}
    assert all(torch.equal(state[k], after[k]) for k in state)
    row = run.run_static(step, 2)  # and training goes on
    assert row["nonfinite"] == 0
    assert not all(torch.equal(a, b) for a, b in zip(before, run.params()))


def test_a_skipped_first_step_leaves_fresh_optimizer_state():
    cfg, G, C, images = setup("wgan-gp", on_nan="skip")
    run = Run(cfg, G, C, images)
    before = run.params()
    handle = nan_on_call(run.G, calls=set(range(100)))
    row = run.run_static(run.static(), 0)
    handle.remove()
    assert row["nonfinite"] == 1
    assert all(torch.equal(a, b) for a, b in zip(before, run.params()))
    for opt in (run.g_opt, run.c_opt):
        for st in opt.state.values():  # the state the step created is back to its zeros
            assert all(float(v.abs().sum()) == 0 for v in st.values())


def test_stop_mode_only_flags_the_step():
    # on_nan=stop in a graph: no check inside the step; the loop stops at the next flush.
    cfg, G, C, images = setup("seed", on_nan="stop")
    run = Run(cfg, G, C, images)
    handle = nan_on_call(run.C, calls={0})
    row = run.run_static(run.static(), 0)
    handle.remove()
    assert row["nonfinite"] == 1


def test_step_unless_is_a_plain_step_when_fine():
    w1 = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    w2 = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    o1, o2 = torch.optim.Adam([w1], lr=0.1), torch.optim.Adam([w2], lr=0.1)
    for _ in range(2):
        for w in (w1, w2):
            w.grad = torch.tensor([0.5, 0.25])
        o1.step()
        steps.step_unless(o2, [w2], torch.tensor(False))
    assert torch.equal(w1, w2)
    w2.grad = torch.tensor([float("nan"), 1.0])
    kept = w2.detach().clone()
    steps.step_unless(o2, [w2], torch.tensor(True))
    assert torch.equal(w2.detach(), kept) and float(o2.state[w2]["step"]) == 2


def test_prepare_optimizer_moves_step_counters():
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([w])
    w.grad = torch.ones(2)
    opt.step()
    opt.state[w]["step"] = opt.state[w]["step"].double()
    kernels.prepare_optimizer(opt, capturable=False, fused=False)
    group = opt.param_groups[0]
    assert group["capturable"] is False and group["fused"] is None
    assert opt.state[w]["step"].dtype == torch.float32 and opt.state[w]["step"].device == CPU
    kernels.prepare_optimizer(opt, capturable=True, fused=True)
    assert group["capturable"] is True and group["fused"] is True
    rms = torch.optim.RMSprop([w])
    kernels.prepare_optimizer(rms, capturable=True, fused=True)
    assert rms.param_groups[0]["foreach"] is True and "fused" not in rms.param_groups[0]


def test_bf16_autocast_keeps_the_penalty_norm_in_fp32():
    critic = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(),
                                 torch.nn.Linear(4 * 26 * 26, 1))
    real, fake = torch.randn(4, 1, 28, 28), torch.randn(4, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp, norms = gradient_penalty(critic, real, fake)
    assert norms.dtype == torch.float32 and gp.dtype == torch.float32


def test_bf16_static_step_is_close_to_fp32():
    cfg, G, C, images = setup("wgan-gp")
    full, half = Run(cfg, G, C, images), Run(cfg, G, C, images)
    want = full.run_static(full.static(), 0)
    got = half.run_static(half.static(bf16=True), 0)
    for key in ("d_real", "d_fake", "g_loss", "gp_norm_mean"):
        assert abs(float(got[key]) - float(want[key])) <= 0.05 * abs(float(want[key])) + 0.02


class Graph:
    """torch.cuda.CUDAGraph as a PyTorch that can register generators has it."""

    def register_generator_state(self, generator):
        pass


def on(device):
    return types.SimpleNamespace(device=device)


def test_blockers_name_each_reason(monkeypatch):
    cfg = get_preset("wgan-gp")
    reasons = fast.graph_blockers(cfg, CPU, on(CPU), world=1)
    assert any("device is cpu" in r for r in reasons)
    assert any("several processes" in r for r in fast.graph_blockers(cfg, CPU, on(CPU), 2))
    assert "--no-cuda-graph" in fast.graph_blockers(cfg, CPU, on(CPU), 1, enabled=False)

    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph, raising=False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    # What real tensors report (cuda:0) against what a run is given (cuda): one device.
    run, data = torch.device("cuda"), torch.device("cuda", 0)
    assert fast.graph_blockers(cfg, run, on(data), 1) == []
    # spectral norm, minibatch discrimination and clipping capture like any other kernels
    for model in ({"spectral_norm": True}, {"minibatch_discrimination": True}):
        odd = apply_overrides(cfg, {"model": model, "train": {"clip": 0.01}})
        assert fast.graph_blockers(odd, run, on(data), 1) == []
    on_host = fast.graph_blockers(cfg, run, on(CPU), 1)
    assert len(on_host) == 1 and "host memory" in on_host[0]
    elsewhere = fast.graph_blockers(cfg, run, on(torch.device("cuda", 1)), 1)
    assert elsewhere == ["the data is on cuda:1, the run on cuda"]


def test_a_cuda_run_chooses_the_graph(monkeypatch):
    """make_runner on a (patched) CUDA machine: data on cuda:0, run on cuda -> "cuda-graph",
    the step_mode train() writes to run.json."""
    cfg, G, C, images = setup("wgan-gp")
    run = Run(cfg, G, C, images)
    built = {}

    class Static:  # the real StaticStep allocates on the device, which this CPU cannot
        def __init__(self, *args, **kwargs):
            built["args"], self.device = args, args[7]
            self.speed = args[0].speed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph, raising=False)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)
    monkeypatch.setattr(fast, "StaticStep", Static)
    data = on(torch.device("cuda", 0))
    cuda = torch.device("cuda")
    args = (cfg, run.G, run.C, run.g_opt, run.c_opt, data, run.noise, cuda)
    runner = make_runner(*args)
    assert (runner.mode, runner.reason) == ("cuda-graph", "")
    assert isinstance(runner, fast.GraphStep) and built["args"][5] is data
    assert run.c_opt.param_groups[0]["capturable"] is True
    # data on another GPU: eager, saying why
    monkeypatch.setattr(runner_module, "EagerStep", lambda *a: types.SimpleNamespace(mode="eager"))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    runner = make_runner(*args)
    assert runner.mode == "eager" and "data is on cuda:0" in runner.reason
    assert run.c_opt.param_groups[0]["capturable"] is False


def test_make_runner_on_cpu_is_eager_and_says_why():
    cfg, G, C, images = setup("wgan-gp")
    run = Run(cfg, G, C, images)
    runner = make_runner(*run.args())
    assert runner.mode == "eager" and "device is cpu" in runner.reason
    assert run.g_opt.param_groups[0]["capturable"] is False

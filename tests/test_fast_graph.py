"""The graph runner's bookkeeping on the CPU (warm-up, capture, replay, output copies,
fall-back), driven with stand-ins for torch.cuda's streams and graphs, and how the training
loop checks graph steps for NaN/Inf when it reads their metrics."""

import contextlib
import copy
import types

import pytest
import torch

from fastrun import Run, setup
from wganlab.training import fast
from wganlab.training.runner import EagerStep

pytestmark = pytest.mark.usefixtures("one_thread")



class FakeCuda:
    """Stand-ins for torch.cuda's streams and graphs that run on the CPU.

    A real capture records kernels without running them, so the fake one runs the step on
    throw-away copies of the training state (restored afterwards); a real replay runs the
    recorded kernels into the captured output, so the fake one runs the step again and copies
    into that output.
    """

    def __init__(self, run, runner, fail_capture=False):
        self.run, self.runner, self.fail = run, runner, fail_capture
        self.captures = self.replays = 0
        self.registered = []  # the generators registered with the graph

    def install(self, monkeypatch):
        stream = types.SimpleNamespace(wait_stream=lambda other: None)
        fake = self

        class Graph:
            def register_generator_state(self, generator):
                fake.registered.append(generator)

            def replay(self):
                fake.replays += 1
                fake.runner.out.copy_(fake.runner.static())

        @contextlib.contextmanager
        def graph(g):
            fake.captures += 1
            if fake.fail:
                raise RuntimeError("operation not permitted when stream is capturing")
            saved = copy.deepcopy([fake.run.G.state_dict(), fake.run.C.state_dict(),
                                   fake.run.g_opt.state_dict(), fake.run.c_opt.state_dict()])
            # A registered generator's draws in a capture are recorded, not consumed.
            streams = [(g, g.get_state()) for g in fake.registered]
            yield
            for obj, state in zip((fake.run.G, fake.run.C, fake.run.g_opt, fake.run.c_opt),
                                  saved):
                obj.load_state_dict(state)
            for g, state in streams:
                g.set_state(state)

        for name, value in {"Stream": lambda device: stream, "current_stream": lambda d: stream,
                            "stream": lambda s: contextlib.nullcontext(), "CUDAGraph": Graph,
                            "graph": graph, "synchronize": lambda d=None: None,
                            "set_stream": lambda s: None}.items():
            monkeypatch.setattr(torch.cuda, name, value, raising=False)


def test_graph_runner_warms_up_captures_once_and_replays(monkeypatch):
    cfg, G, C, images = setup("wgan-gp")
    eager, graphed = Run(cfg, G, C, images), Run(cfg, G, C, images)
    runner = EagerStep(*eager.args())
    wants = [runner.step(eager.order, i * eager.per_step) for i in range(5)]
    fake = FakeCuda(graphed, None)
    fake.install(monkeypatch)
    graph_step = fast.GraphStep(graphed.static(), fallback=None, warmup=2)
    fake.runner = graph_step
    rows = []
    for i, want in enumerate(wants):
        rows.append(graph_step.step(graphed.order, i * graphed.per_step))
        for key in want:
            assert torch.equal(rows[-1][key], want[key].float()), (i, key)
    assert (fake.captures, fake.replays, graph_step.mode) == (1, 3, "cuda-graph")
    # each step's values are its own copy, not a view of the buffer the next replay refills
    assert len({float(r["d_loss"]) for r in rows}) == 5
    for a, b in zip(eager.params(), graphed.params()):
        assert torch.equal(a, b)


def test_a_failed_capture_falls_back_to_eager_and_says_why(monkeypatch, capsys):
    cfg, G, C, images = setup("seed")
    run = Run(cfg, G, C, images)
    fake = FakeCuda(run, None, fail_capture=True)
    fake.install(monkeypatch)
    graph_step = fast.GraphStep(run.static(), fallback=lambda: EagerStep(*run.args()),
                                warmup=1)
    fake.runner = graph_step
    for i in range(3):
        row = graph_step.step(run.order, i)
        assert row["nonfinite"] == 0
    assert graph_step.mode == "eager" and "capture failed" in graph_step.reason
    assert "RuntimeError" in capsys.readouterr().err
    assert fake.captures == 1 and graph_step.last_real is not None


class FlagsStep:
    """A runner that reports step `bad` as non-finite without raising, as graph steps do."""

    mode, reason = "cuda-graph", ""

    def __init__(self, inner, bad):
        self.inner, self.bad, self.calls = inner, bad, 0

    def __getattr__(self, name):  # last_real, speed, notes: the inner runner's
        return getattr(self.inner, name)

    def step(self, order, first):
        self.calls += 1
        terms = self.inner.step(order, first)
        if self.calls == self.bad:
            terms["nonfinite"] = torch.tensor(1.0)
            terms["g_loss"] = torch.tensor(float("nan"))
        return terms


@pytest.mark.parametrize("on_nan", ["stop", "skip"])
def test_graph_steps_are_checked_when_the_metrics_are_read(on_nan, tmp_path, tiny_flags,
                                                           monkeypatch, capsys):
    from wganlab.base import checkpoint
    from wganlab.cli import main
    from wganlab.training import loop as train

    real = train.make_runner
    monkeypatch.setattr(train, "make_runner",
                        lambda *a, **k: FlagsStep(real(*a, **k), bad=3))
    run = tmp_path / "run"
    code = main(["train", "--preset", "seed", "--steps", "6", "--log-every", "4",
                 "--on-nan", on_nan, "--checkpoint-every", "2", "--out", str(run),
                 *tiny_flags])
    err = capsys.readouterr()
    saved = [p.name for p in checkpoint.list_checkpoints(run)]
    if on_nan == "stop":
        # found at step 4's flush: no checkpoint after the bad step
        assert code == 5 and "step 3: non-finite value in g_loss" in err.err
        assert "stopping at step 4" in err.err
        assert saved == ["step-00000002.pt"]
    else:
        assert code == 0 and "Skipped 1 steps" in err.out
        assert torch.load(run / "checkpoints" / saved[0], weights_only=True)["skipped"] == 1

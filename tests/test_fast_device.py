"""Which device is which (real torch.device objects, as tensors report them), and batches
that reach past the data: refused by name on both the graph's and the eager path."""

import pytest
import torch

from fastrun import Run, setup
from wganlab.base.device import pick_device, same_device
from wganlab.errors import ConfigError
from wganlab.training.runner import EagerStep

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def current_is(monkeypatch):
    def set_current(index):
        monkeypatch.setattr(torch.cuda, "current_device", lambda: index)

    return set_current


def test_an_index_less_cuda_is_the_current_device(current_is):
    cuda, cuda0, cuda1 = torch.device("cuda"), torch.device("cuda", 0), torch.device("cuda:1")
    current_is(0)
    assert same_device(cuda, cuda0) and same_device(cuda0, cuda)
    assert not same_device(cuda, cuda1) and not same_device(cuda0, cuda1)
    current_is(1)
    assert same_device(cuda, cuda1) and not same_device(cuda, cuda0)
    assert same_device("cuda", "cuda") and same_device(cuda1, "cuda:1")


def test_device_types_differ(current_is):
    current_is(0)
    cpu = torch.device("cpu")
    assert same_device(cpu, torch.device("cpu")) and same_device(cpu, "cpu:0")
    assert not same_device(torch.device("cuda", 0), cpu)
    assert not same_device(cpu, torch.device("cuda"))
    assert not same_device(torch.device("meta"), cpu)


def test_an_index_less_cuda_is_only_looked_up_when_needed(monkeypatch):
    def no_cuda():
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(torch.cuda, "current_device", no_cuda)
    assert same_device("cpu", "cpu") and not same_device("cuda", "cpu")
    assert same_device("cuda:0", "cuda:0")


@pytest.mark.parametrize("preset", ["wgan-gp", "seed"])
def test_batches_past_the_data_are_refused_by_name(preset):
    cfg, G, C, images = setup(preset)  # 200 images, batch 6: batches 0..32 exist
    run = Run(cfg, G, C, images)
    n = run.per_step
    last = len(images) // 6 - n  # the last step whose batches all fit
    static = run.static()
    static.load(run.order, last)
    with pytest.raises(IndexError, match=rf"batch(es)? {last + 1}\b.* data set holds 200"):
        static.load(run.order, last + 1)
    eager = EagerStep(*run.args())
    before = run.params()
    with pytest.raises(IndexError, match=rf"batch(es)? {last + 1}\b.*up to 204.*holds 200"):
        eager.step(run.order, last + 1)
    assert all(torch.equal(a, b) for a, b in zip(before, run.params()))  # refused up front
    with pytest.raises(IndexError, match=rf"batch(es)? 33\b.* up to {(33 + n) * 6}\b"):
        eager.maker.indices(run.order, 33)
    with pytest.raises(IndexError, match="batch(es)? -1"):
        eager.maker.indices(run.order, -1)


@pytest.mark.parametrize("cuda, mps, want", [(True, True, "cuda"), (False, True, "mps"),
                                             (False, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, want):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert pick_device("auto") == torch.device(want)
    assert pick_device("cpu") == torch.device("cpu")
    if cuda:
        assert pick_device("cuda:1") == torch.device("cuda", 1)
    else:
        with pytest.raises(ConfigError, match="--device: cuda asked for"):
            pick_device("cuda")

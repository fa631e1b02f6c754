"""Labels through the one step: the batch gathers them with the images and draws nothing
extra, every runner computes the same conditional step (the CUDA-graph one on the CPU, with
real device objects), the penalty holds the labels fixed and AC-GAN's loss is the sum it
says."""

import types

import pytest
import torch

from fastrun import CPU, Run, assert_static_equals_eager
from wganlab import losses
from wganlab.config import apply_overrides, get_preset
from wganlab.models import build_models
from wganlab.training import fast, steps
from wganlab.training.batches import BatchMaker
from wganlab.training.runner import EagerStep, make_runner

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = tuple("abcd")


def setup(preset="fast", kind="projection", **train):
    cfg = apply_overrides(get_preset(preset), {
        "model": dict(g_filters=8, c_filters=4, conditional=kind, class_names=NAMES),
        "train": dict(batch_size=6, **train)})
    torch.manual_seed(0)
    generator, critic = build_models(cfg.model, (1, 28, 28))
    images = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, len(NAMES), (200,), generator=torch.Generator().manual_seed(2))
    return cfg, generator, critic, images, labels


class LabelledRun(Run):
    """fastrun.Run with the data's labels beside its images."""

    def __init__(self, cfg, generator, critic, images, labels):
        super().__init__(cfg, generator, critic, images)
        self.labels = labels

    def static(self, **speed):
        return fast.StaticStep(self.with_speed(**speed), *self.args()[1:], labels=self.labels)

    def eager(self, **speed):
        return EagerStep(self.with_speed(**speed), *self.args()[1:], labels=self.labels)


@pytest.mark.parametrize("preset", ["fast", "wgan-gp", "seed"])
def test_the_batch_gathers_labels_and_draws_what_it_drew_before(preset):
    cfg, _, _, images, labels = setup(preset)
    plain = apply_overrides(cfg, {"model": {"conditional": "none", "class_names": None}})
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(3))
    idx = BatchMaker(plain, images, torch.Generator(), CPU).indices(order, 0)
    with_labels = BatchMaker(cfg, images, torch.Generator().manual_seed(5), CPU,
                             labels=labels).make(idx)
    without = BatchMaker(plain, images, torch.Generator().manual_seed(5), CPU,
                         labels=labels).make(idx)
    assert without.labels is None  # an unconditional run ignores the data's labels
    assert torch.equal(with_labels.z, without.z) and torch.equal(with_labels.reals,
                                                                 without.reals)
    if with_labels.alphas is not None:
        assert torch.equal(with_labels.alphas, without.alphas)
    k = len(with_labels.reals)
    rows = labels[idx].view(k, -1)
    # one row per z: each real batch's labels, then (not shared) the last one's again
    assert len(with_labels.labels) == len(with_labels.z)
    assert torch.equal(with_labels.labels[:k], rows)
    if not cfg.train.shared_step:
        assert torch.equal(with_labels.labels[-1], rows[-1])


def test_a_conditional_batch_without_labels_is_refused():
    cfg, _, _, images, _ = setup()
    with pytest.raises(ValueError, match="needs the data's labels"):
        BatchMaker(cfg, images, torch.Generator(), CPU)


@pytest.mark.parametrize("preset,kind", [("fast", "projection"), ("fast", "acgan"),
                                         ("wgan-gp", "projection"), ("seed", "acgan")])
def test_static_step_matches_the_eager_step_with_labels(preset, kind):
    cfg, G, C, images, labels = setup(preset, kind)
    runner, step, wants = assert_static_equals_eager(
        LabelledRun(cfg, G, C, images, labels), LabelledRun(cfg, G, C, images, labels))
    assert ("c_class_loss" in wants[-1]) == (kind == "acgan")
    assert torch.equal(runner.last_labels, step.last_labels)


def test_the_conditional_static_step_reads_nothing_back(monkeypatch):
    cfg, G, C, images, labels = setup("fast", "acgan")
    run = LabelledRun(cfg, G, C, images, labels)
    step = run.static()
    for name in ("__bool__", "item", "tolist"):
        def refuse(self, *a, _name=name, **k):
            raise AssertionError(f"Tensor.{_name} inside the step")
        monkeypatch.setattr(torch.Tensor, name, refuse)
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, closure=None: None)
    run.run_static(step, 0)  # the optimizers' own host reads are stubbed out above


def test_a_cuda_run_with_labels_chooses_the_graph(monkeypatch):
    """make_runner on a (patched) CUDA machine hands the labels to the graph's step."""
    cfg, G, C, images, labels = setup()
    run = LabelledRun(cfg, G, C, images, labels)
    built = {}

    class Static:
        def __init__(self, *args, **kwargs):
            built.update(args=args, kwargs=kwargs)
            self.device, self.speed = args[7], args[0].speed

    class Graph:
        def register_generator_state(self, generator):
            pass

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph, raising=False)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device: None)
    monkeypatch.setattr(fast, "StaticStep", Static)
    data = types.SimpleNamespace(device=torch.device("cuda", 0))
    args = (cfg, run.G, run.C, run.g_opt, run.c_opt, data, run.noise, torch.device("cuda"))
    runner = make_runner(*args, labels=labels)
    assert runner.mode == "cuda-graph"
    assert built["args"][-1] is labels or built["kwargs"].get("labels") is labels


def test_the_penalty_holds_the_labels_fixed():
    """gp of a projection critic = the plain gradient penalty of x -> critic(x, labels)."""
    cfg, G, C, images, labels = setup()
    with torch.no_grad():
        C.projection.embedding.weight.mul_(50)  # make the class term matter
    body = steps.Step(cfg, G, C, None, None, steps.HostCheck("stop"))
    real = torch.rand(6, 1, 28, 28) * 2 - 1
    fake, alpha, y = torch.rand(6, 1, 28, 28) * 2 - 1, torch.rand(6), labels[:6]
    _, terms = body.critic_terms(real, fake, alpha, y)
    want, _ = losses.gradient_penalty(lambda x: C(x, y), real, fake, alpha)
    other, _ = losses.gradient_penalty(lambda x: C(x, (y + 1) % 4), real, fake, alpha)
    assert torch.allclose(terms["gp"], want.detach(), rtol=1e-6)
    assert not torch.allclose(want, other, rtol=1e-3)  # the labels do change the penalty


def test_acgan_losses_add_the_weighted_cross_entropy():
    cfg, G, C, images, labels = setup("fast", "acgan", acgan_weight=0.5)
    body = steps.Step(cfg, G, C, None, None, steps.HostCheck("stop"))
    real, fake = torch.rand(6, 1, 28, 28) * 2 - 1, torch.rand(6, 1, 28, 28) * 2 - 1
    alpha, y = torch.rand(6), labels[:6]
    loss, terms = body.critic_terms(real, fake, alpha, y)
    d_real, logits = C(real, y, return_logits=True)
    ce = losses.class_cross_entropy(logits, y)
    wasserstein = C(fake, y).mean() - d_real.mean()
    assert torch.allclose(loss, wasserstein + 10 * terms["gp"] + 0.5 * ce, rtol=1e-5)
    assert torch.allclose(terms["c_class_loss"], ce.detach())
    g_loss, g_terms = body.generator_terms(fake, real, y)
    d_fake, fake_logits = C(fake, y, return_logits=True)
    want = -d_fake.mean() + 0.5 * losses.class_cross_entropy(fake_logits, y)
    assert torch.allclose(g_loss, want, rtol=1e-5) and "g_class_loss" in g_terms

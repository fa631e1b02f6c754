"""Augmentation inside the step: every critic input augmented (real and generated, the
generator's pass included), draws from the augmentation's own stream (never the noise
stream's z and alphas), the CUDA graph's static step equal to the eager step, and the held-out
heuristic that drives --augment-p auto."""

import pytest
import torch
from torch import nn

from fastrun import Run, assert_static_equals_eager, setup
from test_fast_graph import FakeCuda
from wganlab.augment import augment, draws_needed
from wganlab.config import apply_overrides
from wganlab.data import Dataset
from wganlab.metrics.overfit import overfit_ratio
from wganlab.training import fast
from wganlab.training.augmenting import IMAGES_TO_ONE, Augmenter, AugmentState, Overfitting
from wganlab.training.distributed import Shard
from wganlab.training.runner import EagerStep

pytestmark = pytest.mark.usefixtures("one_thread")
ALL = "translation,cutout,colour"


def augmented(preset, augment=ALL, p=1.0, **train):
    cfg, G, C, images = setup(preset)
    cfg = apply_overrides(cfg, {"train": dict(augment=augment, augment_p=p, **train)})
    return cfg, G, C, images


@pytest.mark.parametrize("preset,xflip", [("wgan-gp", False), ("seed", True), ("dcgan", True)])
def test_static_step_matches_the_eager_step_with_augmentation(preset, xflip):
    cfg, G, C, images = augmented(preset, p=0.6, xflip=xflip)
    assert_static_equals_eager(Run(cfg, G, C, images), Run(cfg, G, C, images))


def critic_inputs(run, step_fn):
    seen = []
    handle = run.C.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    step_fn()
    handle.remove()
    return seen


def test_every_critic_pass_sees_augmented_images_drawn_from_their_own_stream():
    cfg, G, C, images = augmented("wgan-gp", augment="cutout")
    plain_cfg, *_ = setup("wgan-gp")
    aug, plain = Run(cfg, G, C, images), Run(plain_cfg, G, C, images)
    runner = aug.eager()
    stream = runner.maker.augmenter.streams[0]
    fresh = stream.get_state()
    got = critic_inputs(aug, lambda: runner.step(aug.order, 0))
    want = critic_inputs(plain, lambda: plain.eager().step(plain.order, 0))
    # Per critic update: real, fake, penalty interpolates; then the generator's fake pass.
    assert len(got) == len(want) == 3 * cfg.train.n_critic + 1
    # Cutout zeroes a 14x14 square (at least 7x7 of it inside) in every real and fake image.
    scored = [x for i, x in enumerate(got) if i % 3 != 2]  # not the interpolates
    for x in scored:
        zeros = (x == 0).flatten(1).sum(1)
        assert bool((zeros >= 7 * 7).all()) and bool((zeros <= 14 * 14).all())
    # The real pass is the plain batch with the square cut: outside it, the same pixels.
    real, plain_real = got[0], want[0]
    assert torch.equal(real[real != 0], plain_real[real != 0])
    # The draws came from the augmentation's stream; the noise stream moved as the plain one.
    assert not torch.equal(stream.get_state(), fresh)
    assert torch.equal(aug.noise.get_state(), plain.noise.get_state())


def test_gradients_flow_to_the_generators_output_through_the_augmentation():
    cfg, G, C, images = augmented("wgan-gp")
    run = Run(cfg, G, C, images)
    body = run.eager().body
    fake = torch.randn(6, 1, 28, 28, requires_grad=True)
    loss, _ = body.generator_terms(fake, None)
    loss.backward()
    assert fake.grad is not None and bool((fake.grad.flatten(1).abs().sum(1) > 0).all())


def test_p_zero_is_the_plain_run_step_after_step():
    # The augmentations are drawn (from their own stream) but act on no image, and z and the
    # alphas stay the plain run's at every step, so the two runs stay one run.
    cfg, G, C, images = augmented("wgan-gp", p=0.0)
    plain_cfg, *_ = setup("wgan-gp")
    aug, plain = Run(cfg, G, C, images), Run(plain_cfg, G, C, images)
    aug_steps, plain_steps = aug.eager(), plain.eager()
    for i in range(3):
        got = aug_steps.step(aug.order, i * aug.per_step)
        want = plain_steps.step(plain.order, i * plain.per_step)
        for key in want:
            assert torch.equal(got[key], want[key]), (i, key)
    for a, b in zip(aug.params(), plain.params()):
        assert torch.equal(a, b)


class Memoriser(nn.Module):
    """A synthetic critic: +1 on the images it trained on (bright top-left pixel), -1 on any
    other image, real or generated; or, when fair, the same score for every real image."""

    def __init__(self, fair: bool):
        super().__init__()
        self.fair = fair

    def forward(self, x):
        if self.fair:  # real images (held out or not) are bright on average, fakes dark
            return x.flatten(1)[:, 1:].mean(1, keepdim=True)
        return torch.where(x[:, :, 0, 0] > 0, 1.0, -1.0)


def held(images, labels=None):
    """Held-out images as select_images gives them."""
    return Dataset(images, labels, "x", "train", "here", None if labels is None else 10)


class FakeState:
    def __init__(self, critic):
        self.critic, self.generator = critic, nn.Conv2d(4, 1, 1)  # fakes: whatever it gives
        self.fixed_z = torch.full((64, 4, 8, 8), -1.0)
        with torch.no_grad():
            self.generator.weight.fill_(0.25), self.generator.bias.fill_(-1.0)  # all -2


@pytest.mark.parametrize("fair", [False, True])
def test_auto_moves_p_up_when_the_critic_overfits_and_down_when_not(fair):
    g = torch.Generator().manual_seed(0)
    train = torch.randint(128, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=g)
    heldout = torch.randint(128, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=g)
    heldout[:, :, 0, 0] = 0  # the memoriser has never seen these
    watch = Overfitting(train, [held(heldout)], every=4, device=torch.device("cpu"))
    p = AugmentState("auto", torch.device("cpu"))
    p.p.fill_(0.5)
    state = FakeState(Memoriser(fair))
    for step in (4, 8, 12):
        p.adjust(watch.measure(state, step), images=1000)
    ratio = float(p.overfit)
    if fair:
        assert abs(ratio) < 0.05 and float(p.p) == pytest.approx(0.5 - 3 * 1000 / IMAGES_TO_ONE)
    else:
        assert ratio == pytest.approx(1.0) and float(p.p) == pytest.approx(0.8)
    assert (ratio > p.target) != fair


@pytest.mark.parametrize("target,moves", [(0.3, +1), (0.5, 0), (0.6, -1), (-1.0, +1)])
def test_the_target_decides_which_way_p_moves(target, moves):
    # Half the held-out images unseen by the memoriser: train +1, held-out 0, fakes -1,
    # so the heuristic is (1 - 0) / (1 + 1) = 0.5 exactly.
    g = torch.Generator().manual_seed(0)
    train = torch.randint(128, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=g)
    heldout = train.clone()
    heldout[::2, :, 0, 0] = 0
    watch = Overfitting(train, [held(heldout)], every=4, device=torch.device("cpu"))
    p = AugmentState("auto", torch.device("cpu"), target=target)
    p.p.fill_(0.5)
    p.adjust(watch.measure(FakeState(Memoriser(False)), 4), images=1000)
    assert float(p.overfit) == 0.5
    assert float(p.p) == pytest.approx(0.5 + moves * 1000 / IMAGES_TO_ONE)


class LabelChecker(nn.Module):
    """A class-conditional critic stand-in: 1 where the label is the class the image's
    top-left pixel encodes, else 0; it refuses to score without labels."""

    def forward(self, x, labels):
        encoded = ((x[:, 0, 0, 0] + 1) * 127.5).round().long() % 10
        return (encoded == labels).float()


class ClassZero(nn.Module):
    """A conditional generator stand-in: every image all -1 (pixel 0, class 0)."""

    def forward(self, z, labels):
        return torch.full((len(z), 1, 8, 8), -1.0)


def test_a_conditional_critic_scores_each_image_with_its_own_class():
    # Training images all labelled right (score 1); held-out ones right at even rows only
    # (mean 0.5); fakes (pixel 0: class 0) asked for class 1 (score 0): (1 - 0.5) / (1 - 0).
    classes = torch.arange(100) % 10
    train = classes.to(torch.uint8).view(100, 1, 1, 1).expand(100, 1, 8, 8).clone()
    wrong = classes.clone()
    wrong[1::2] = (wrong[1::2] + 1) % 10
    watch = Overfitting(train, [held(train.clone(), wrong)], every=4,
                        device=torch.device("cpu"), labels=classes)
    state = FakeState(LabelChecker())
    state.generator = ClassZero()
    state.fixed_labels = torch.ones(64, dtype=torch.long)
    for step in (0, 4, 8):
        assert float(watch.measure(state, step)) == 0.5


class TwoMembers(nn.Module):
    """An ensemble's critic stand-in: member 0 memorises, member 1 is fair."""

    def forward(self, x):
        first, second = x.chunk(2)
        return torch.cat([Memoriser(False)(first), Memoriser(True)(second)])


def test_auto_moves_each_members_p_by_its_own_critic():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(128, 256, (2, 100, 1, 8, 8), dtype=torch.uint8, generator=g)
    heldout = torch.randint(128, 256, (2, 100, 1, 8, 8), dtype=torch.uint8, generator=g)
    heldout[:, :, :, 0, 0] = 0
    # Member k trains on rows [100 k, 100 (k + 1)) of the images, held out its own.
    watch = Overfitting(train.flatten(0, 1), [held(h) for h in heldout], every=4,
                        device=torch.device("cpu"), block=100)
    p = AugmentState("auto", torch.device("cpu"), seeds=(1, 2))
    p.p.fill_(0.5)
    state = FakeState(TwoMembers())
    state.fixed_z = state.fixed_z.repeat(2, 1, 1, 1)
    for step in (4, 8, 12):
        p.adjust(watch.measure(state, step), images=1000)
    assert p.overfit.shape == (2,) and float(p.overfit[0]) == pytest.approx(1.0)
    assert abs(float(p.overfit[1])) < 0.05
    assert p.p.tolist() == pytest.approx([0.8, 0.5 - 3 * 1000 / IMAGES_TO_ONE])


def test_the_heuristic_by_hand_and_p_stays_a_probability():
    # Train 3, held-out 2, fakes -1: (3 - 2) / (3 + 1) = 0.25.
    assert float(overfit_ratio(torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([-1.0]))
                 ) == 0.25
    # Fakes scored like (or above) the training images: bounded, with the numerator's sign.
    assert float(overfit_ratio(torch.tensor([3.0]), torch.tensor([2.0]), torch.tensor([3.0]))
                 ) == 1.0
    assert float(overfit_ratio(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([1.5]))
                 ) == -1.0
    p = AugmentState("auto", torch.device("cpu"))
    p.adjust(torch.tensor(1.0), images=10 * IMAGES_TO_ONE)
    assert float(p.p) == 1.0
    p.adjust(torch.tensor(0.0), images=10 * IMAGES_TO_ONE)
    assert float(p.p) == 0.0


@pytest.mark.slow
def test_p_adapted_in_place_between_graph_replays_acts_like_the_eager_steps(monkeypatch):
    # auto changes p between steps, outside the graph: the replay must read the new value
    # from the device tensor it captured, as the eager step reads it.
    cfg, G, C, images = augmented("wgan-gp", p="auto")
    eager, graphed, still = (Run(cfg, G, C, images) for _ in range(3))
    ps = [AugmentState("auto", torch.device("cpu")) for _ in range(3)]
    runner = EagerStep(*eager.args(), augment_state=ps[0])
    unchanged = EagerStep(*still.args(), augment_state=ps[2])
    fake = FakeCuda(graphed, None)
    fake.install(monkeypatch)
    graph_step = fast.GraphStep(fast.StaticStep(*graphed.args(), augment_state=ps[1]),
                                fallback=None, warmup=1)
    fake.runner = graph_step
    for i in range(4):
        if i == 2:  # after the capture: p moves for the eager and the graphed run alike
            ps[0].p.fill_(0.7), ps[1].p.fill_(0.7)
        first = i * eager.per_step
        want, got = runner.step(eager.order, first), graph_step.step(graphed.order, first)
        other = unchanged.step(still.order, first)
        for key in want:
            assert torch.equal(got[key], want[key].float()), (i, key)
    assert fake.replays == 3 and not torch.equal(other["d_loss"], want["d_loss"])
    # The augmentation's stream is registered with the graph (else each replay would repeat
    # the captured draws) and ends where the eager run's does.
    assert any(g is ps[1].streams[0] for g in fake.registered)
    assert torch.equal(ps[1].streams[0].get_state(), ps[0].streams[0].get_state())


def test_under_ddp_each_rank_takes_its_slice_of_the_global_batchs_draws():
    # Every rank draws for the global batch (so its stream stays the one-process run's) and
    # augments its own images with its rows of those draws.
    policies = ("translation", "cutout")
    x = torch.randn(3, 1, 8, 8)
    p = torch.tensor(1.0)
    got = Augmenter(policies, p, [torch.Generator().manual_seed(3)], torch.device("cpu"),
                    Shard(rank=1, world=2))(x)
    u = torch.rand(6, draws_needed(policies), generator=torch.Generator().manual_seed(3))
    assert torch.equal(got, augment(x, u[3:], p, policies))
    assert not torch.equal(got, augment(x, u[:3], p, policies))

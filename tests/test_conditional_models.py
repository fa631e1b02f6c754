"""Class-conditional networks against hand-computed answers: the projection critic's
psi(h) + <e_y, h>, AC-GAN's cross-entropy, conditional BatchNorm, and labels that really
condition the generator."""

import math

import pytest
import torch
from torch import nn

from wganlab import losses
from wganlab.conditioning import ConditionalBatchNorm, ProjectionHead, class_mix, n_classes
from wganlab.config import apply_overrides, get_preset
from wganlab.errors import ConfigError
from wganlab.models import Critic, Generator, build_critic, build_generator, build_models

NAMES = ("a", "b", "c")


def conditional(preset="fast", kind="projection", **model):
    return apply_overrides(get_preset(preset), {"model": {
        "g_filters": 8, "c_filters": 4, "conditional": kind, "class_names": NAMES, **model}})


def test_projection_head_is_psi_plus_the_class_embedding_dot_h():
    """A 1x4x4 image, no hidden layer: h is the image itself (16 values), psi a linear map."""
    torch.manual_seed(0)
    critic = Critic(image_shape=(1, 4, 4), n_filters=1, n_blocks=0, norm="none", dropout=0,
                    conditional="projection", n_classes=3)
    critic.features = nn.Identity()  # h = x, flattened
    with torch.no_grad():
        critic.head.weight.copy_(torch.arange(16.0).view(1, 1, 4, 4) / 100)
        critic.head.bias.fill_(0.5)
        critic.projection.embedding.weight.copy_(torch.tensor([[1.0] * 16, [-2.0] * 16,
                                                               [0.0] * 8 + [3.0] * 8]))
    x = torch.ones(2, 1, 4, 4)
    x[1] *= 2
    y = torch.tensor([1, 2])
    # psi(h) = sum(w * h) + b: 1.2 + 0.5 for ones, 2.4 + 0.5 for twos;
    # <e_y, h> = -2 * 16 for ones in class 1, 3 * 8 * 2 for twos in class 2.
    want = torch.tensor([1.2 + 0.5 - 32.0, 2.4 + 0.5 + 48.0])
    assert torch.allclose(critic(x, y), want, atol=1e-5)
    with pytest.raises(ValueError, match="needs the images' labels"):
        critic(x)


def test_projection_head_alone():
    head = ProjectionHead(2, 3)
    with torch.no_grad():
        head.embedding.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]))
    h = torch.tensor([[1.0, 1.0, 1.0], [2.0, 4.0, 6.0]])
    assert torch.equal(head(h, torch.tensor([0, 1])), torch.tensor([6.0, -1.0]))
    # a soft label mixes the classes' embeddings: (0.5, 0.5, 1.75) here
    mix = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    assert torch.allclose(head(h, mix), torch.tensor([2.75, 1.0 + 2.0 + 10.5]))


def test_acgan_loss_is_the_hand_computed_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    labels = torch.tensor([0, 1])
    first = -(2.0 - math.log(math.exp(2.0) + 1 + math.exp(-1.0)))
    second = -(0.5 - math.log(2 * math.exp(0.5) + math.exp(3.0)))
    assert losses.class_cross_entropy(logits, labels).item() == pytest.approx(
        (first + second) / 2, rel=1e-6)


def test_acgan_critic_returns_logits_and_an_unconditional_score():
    torch.manual_seed(0)
    critic = build_critic(conditional(kind="acgan").model, (1, 28, 28))
    x = torch.randn(4, 1, 28, 28)
    score, logits = critic(x, torch.tensor([0, 1, 2, 0]), return_logits=True)
    assert logits.shape == (4, 3)
    assert torch.equal(score, critic(x, torch.tensor([2, 2, 2, 2])))  # the class is not in it
    score, features, logits2 = critic(x, None, return_features=True, return_logits=True)
    assert torch.equal(logits, logits2) and features.shape[0] == 4


def test_conditional_batchnorm_scales_and_shifts_by_class():
    norm = ConditionalBatchNorm(2, 3, momentum=0.1, eps=1e-5)
    with torch.no_grad():
        norm.scale.copy_(torch.tensor([[1.0, 1.0], [2.0, 3.0], [1.0, 1.0]]))
        norm.shift.copy_(torch.tensor([[0.0, 0.0], [10.0, 20.0], [0.0, 0.0]]))
    x = torch.randn(6, 2, 3, 3)
    plain = nn.BatchNorm2d(2, momentum=0.1, eps=1e-5, affine=False)(x)
    got = norm(x, torch.tensor([0, 1, 0, 1, 2, 2]))
    assert torch.allclose(got[0], plain[0], atol=1e-6)
    assert torch.allclose(got[1], plain[1] * torch.tensor([2.0, 3.0]).view(2, 1, 1)
                          + torch.tensor([10.0, 20.0]).view(2, 1, 1), atol=1e-5)


def test_changing_only_the_label_changes_the_generator_output():
    torch.manual_seed(0)
    generator = build_generator(conditional().model, (1, 28, 28)).eval()
    with torch.no_grad():  # a trained network's classes differ; a fresh one starts equal
        for module in generator.modules():
            if isinstance(module, ConditionalBatchNorm):
                module.shift.normal_(0, 0.5)
    z = torch.randn(1, generator.z_dim).repeat(3, 1)
    with torch.no_grad():
        images = generator(z, torch.tensor([0, 1, 2]))
        again = generator(z, torch.tensor([0, 1, 2]))
        one_hot = generator(z, class_mix(0, 2, torch.tensor([0.0, 0.0, 1.0]), 3))
    assert torch.equal(images, again)
    assert not torch.allclose(images[0], images[1]) and not torch.allclose(images[1], images[2])
    assert torch.allclose(one_hot[0], images[0], atol=1e-6)
    assert torch.allclose(one_hot[2], images[2], atol=1e-6)  # soft one-hot = the class


def test_unconditional_and_conditional_networks_refuse_the_wrong_call():
    generator = Generator(z_dim=4, n_filters=8)
    with pytest.raises(ValueError, match="unconditional"):
        generator(torch.randn(2, 4), torch.tensor([0, 1]))
    cond = Generator(z_dim=4, n_filters=8, n_classes=2)
    with pytest.raises(ValueError, match="needs labels"):
        cond(torch.randn(2, 4))


def test_the_unconditional_networks_are_the_ones_before_classes():
    """--conditional none builds exactly the earlier networks: same parameters, same draws."""
    cfg = get_preset("fast")
    torch.manual_seed(3)
    g, c = build_models(cfg.model, (1, 28, 28))
    assert not any("scale" in k or "projection" in k or "classifier" in k
                   for k in [*g.state_dict(), *c.state_dict()])
    assert n_classes(cfg.model) == 0


def test_a_conditional_config_without_classes_is_refused():
    cfg = apply_overrides(get_preset("fast"), {"model": {"conditional": "projection"}})
    with pytest.raises(ConfigError, match="--conditional projection: the number of classes"):
        build_generator(cfg.model, (1, 28, 28))


@pytest.mark.parametrize("kind", ["projection", "acgan"])
def test_spectral_norm_and_minibatch_discrimination_take_classes(kind):
    cfg = conditional("sngan", kind, minibatch_discrimination=True)
    critic = build_critic(cfg.model, (1, 28, 28))
    assert critic(torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 1])).shape == (4,)

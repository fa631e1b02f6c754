import pytest
import torch

from wganlab.config import ModelConfig, get_preset
from wganlab.models import Critic, Generator, build_models


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_seed_parameter_counts_match_the_tutorial():
    generator, critic = build_models(get_preset("seed").model, (1, 28, 28))
    assert trainable(generator) == 804_832
    assert trainable(critic) == 1_039_489


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
@pytest.mark.parametrize("norm", ["batch", "layer", "instance", "none"])
def test_shapes(shape, norm):
    cfg = ModelConfig(g_filters=16, c_filters=8, critic_norm=norm)
    generator, critic = build_models(cfg, shape)
    images = generator(torch.randn(4, cfg.z_dim))
    assert images.shape == (4, *shape)
    assert images.min() >= -1 and images.max() <= 1
    assert critic(images).shape == (4,)


def test_three_blocks_and_other_sizes():
    generator = Generator(z_dim=8, image_shape=(3, 64, 48), n_filters=32, n_blocks=3)
    critic = Critic(image_shape=(3, 64, 48), n_filters=4, n_blocks=3, norm="layer", dropout=0.0)
    x = generator(torch.randn(2, 8))
    assert x.shape == (2, 3, 64, 48)
    assert critic(x).shape == (2,)


def test_indivisible_size_is_refused():
    with pytest.raises(ValueError, match="--n-blocks: 2 blocks need H and W divisible by 4"):
        Generator(image_shape=(1, 30, 28))
    with pytest.raises(ValueError, match="divisible"):
        Critic(image_shape=(1, 28, 26))


def test_critic_features_and_tricks():
    cfg = ModelConfig(c_filters=4, critic_norm="none", dropout=0.0, spectral_norm=True,
                      minibatch_discrimination=True, g_filters=8)
    _, critic = build_models(cfg, (1, 28, 28))
    score, feats = critic(torch.randn(5, 1, 28, 28), return_features=True)
    assert score.shape == (5,) and feats.shape == (5, 16 * 7 * 7)


def test_keras_defaults_in_the_seed():
    generator, critic = build_models(get_preset("seed").model, (1, 28, 28))
    bn = generator.project[1]
    assert bn.momentum == 0.01 and bn.eps == 1e-3
    assert generator.project[2].negative_slope == 0.3
    dropouts = [m for m in critic.modules() if isinstance(m, torch.nn.Dropout)]
    assert [d.p for d in dropouts] == [0.3, 0.3]


def test_glorot_init_zero_bias():
    _, critic = build_models(ModelConfig(weight_init="glorot"), (1, 28, 28))
    conv = critic.features[0]
    bound = (6 / (conv.weight[0].numel() + conv.weight.shape[0] * 25)) ** 0.5
    assert conv.weight.abs().max() <= bound
    assert torch.all(conv.bias == 0)


@pytest.mark.parametrize("name", ["seed", "fast", "sngan"])
@pytest.mark.parametrize("conditional", ["none", "projection", "acgan"])
def test_validation_counts_the_networks_it_will_build(name, conditional):
    # Validation counts without spectral norm (slow to build); the count must not change.
    from dataclasses import replace

    from wganlab.validation import parameter_counts

    m = replace(get_preset(name).model, conditional=conditional,
                class_names=[f"c{i}" for i in range(10)])
    nets = build_models(m, (1, 28, 28))
    assert parameter_counts(m, (1, 28, 28)) == tuple(
        sum(p.numel() for p in n.parameters()) for n in nets)


def test_a_network_too_large_is_refused_naming_its_flag():
    from wganlab.config import apply_overrides, validate
    from wganlab.errors import ConfigError

    cfg = apply_overrides(get_preset("sngan"), {"model": {"c_filters": 4096,
                                                          "image_shape": (3, 64, 64)}})
    with pytest.raises(ConfigError, match="--c-filters: the critic would have 4,198,834,177 "):
        validate(cfg)

"""The seed preset's Keras forms without TensorFlow: 'same' padding, Adam's epsilon, the
buffer shuffle, per-image sample scaling. (tests/test_keras_oracle.py checks them against
Keras itself when TensorFlow is installed.)"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from wganlab.config import ModelConfig, get_preset
from wganlab.models import KerasSameConv2d, KerasSameConvTranspose2d, build_models
from wganlab.reporting.plots import grey_limits
from wganlab.training.optim import KerasAdam, make_optimizer
from wganlab.training.schedule import epoch_order


@pytest.mark.parametrize("size", [28, 14])
def test_same_conv_pads_one_before_and_two_after(size, one_thread):
    torch.manual_seed(0)
    conv = KerasSameConv2d(3, 4, 5, 2)
    x = torch.randn(2, 3, size, size)
    expected = F.conv2d(F.pad(x, (1, 2, 1, 2)), conv.weight, conv.bias, stride=2)
    assert conv(x).shape == (2, 4, size // 2, size // 2)
    assert torch.allclose(conv(x), expected, atol=1e-6)
    symmetric = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=2)
    assert (conv(x) - symmetric).abs().max() > 0.1  # PyTorch's padding is another function


def test_same_transposed_conv_is_the_adjoint_of_the_same_conv(one_thread):
    # Keras's Conv2DTranspose is the gradient (adjoint) of its Conv2D with the same padding:
    # <conv(x), y> = <x, conv_T(y)> for the one kernel, with no bias.
    torch.manual_seed(1)
    down, up = KerasSameConv2d(3, 4, 5, 2), KerasSameConvTranspose2d(4, 3, 5, 2)
    with torch.no_grad():
        up.weight.copy_(down.weight)
        down.bias.zero_()
    x, y = torch.randn(2, 3, 14, 14), torch.randn(2, 4, 7, 7)
    assert up(y).shape == x.shape
    lhs, rhs = (down(x) * y).sum(), (x * up(y)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-5)
    full = F.conv_transpose2d(y, up.weight, stride=2)  # 17 x 17
    assert torch.allclose(up(y), full[..., 1:15, 1:15], atol=1e-6)
    assert (up(y) - full[..., 2:16, 2:16]).abs().max() > 0.1  # padding=2, output_padding=1


@pytest.mark.parametrize("shape, blocks", [((1, 28, 28), 2), ((3, 32, 32), 2),
                                           ((3, 64, 48), 3)])
def test_keras_padding_keeps_shapes_and_parameter_names(shape, blocks, one_thread):
    keras = ModelConfig(g_filters=16, c_filters=8, n_blocks=blocks, padding="keras")
    torch_ = ModelConfig(g_filters=16, c_filters=8, n_blocks=blocks)
    g, c = build_models(keras, shape)
    g2, c2 = build_models(torch_, shape)
    assert g(torch.rand(2, 20) * 2 - 1).shape == (2, *shape)
    assert c(torch.zeros(2, *shape)).shape == (2,)
    # Checkpoints name the same tensors either way.
    assert g.state_dict().keys() == g2.state_dict().keys()
    assert c.state_dict().keys() == c2.state_dict().keys()


def test_keras_adam_follows_the_keras_formula():
    # Two steps by hand: m, v as Adam's; the step lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-7
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    grads = [torch.tensor([1e-6, -0.5, 0.0], dtype=torch.float64),
             torch.tensor([2e-6, 0.25, 1e-9], dtype=torch.float64)]
    opt = KerasAdam([w], lr=lr, betas=(b1, b2), eps=eps)
    expected, m, v = w.detach().clone(), torch.zeros(3, dtype=torch.float64), 0.0
    for t, g in enumerate(grads, start=1):
        w.grad = g
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        expected = expected - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (v.sqrt() + eps)
        assert torch.allclose(w.detach(), expected, rtol=1e-12, atol=0)
    # PyTorch's form with the same epsilon moves the small-gradient weight differently.
    w2 = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64))
    torch_adam = torch.optim.Adam([w2], lr=lr, betas=(b1, b2), eps=eps)
    w2.grad = grads[0]
    torch_adam.step()
    first = 1.0 - lr * 1e-6 / (1e-6 + eps / math.sqrt(1 - b2))  # Keras: eps grows 31x
    assert w2[0].item() == pytest.approx(1.0 - lr * 1e-6 / (1e-6 + eps), rel=1e-9)
    assert abs(w2[0].item() - first) > 0.05


def test_keras_adam_resumes_from_its_state_dict(tmp_path):
    grads = [torch.tensor([0.5, -1e-6]), torch.tensor([-0.25, 3e-6])]
    straight = torch.nn.Parameter(torch.ones(2))
    opt = KerasAdam([straight], lr=0.01)
    for g in grads:
        straight.grad = g
        opt.step()
    first = torch.nn.Parameter(torch.ones(2))
    opt = KerasAdam([first], lr=0.01)
    first.grad = grads[0]
    opt.step()
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    resumed = torch.nn.Parameter(first.detach().clone())
    again = KerasAdam([resumed], lr=0.01)
    again.load_state_dict(torch.load(tmp_path / "opt.pt", weights_only=True))
    assert set(again.state[resumed]) == {"step", "exp_avg", "exp_avg_sq"}
    resumed.grad = grads[1]
    again.step()
    assert torch.equal(resumed.detach(), straight.detach())


def test_seed_preset_uses_keras_forms_and_others_keep_pytorchs():
    seed = get_preset("seed")
    assert seed.model.padding == "keras" and seed.train.shuffle_buffer == 10_000
    assert isinstance(make_optimizer(seed, [torch.nn.Parameter(torch.ones(1))], 2e-4),
                      KerasAdam)
    assert seed.train.adam_eps == 1e-7 and seed.run.sample_scaling == "per-image"
    other = get_preset("wgan-gp")
    opt = make_optimizer(other, [torch.nn.Parameter(torch.ones(1))], 1e-4)
    assert type(opt) is torch.optim.Adam and opt.defaults["eps"] == 1e-8
    assert other.model.padding == "torch" and other.train.shuffle_buffer is None


def test_buffer_shuffle_is_a_buffer_shuffle():
    n, buffer = 2000, 100
    firsts, dropped = [], []
    for epoch in range(20):
        order = epoch_order(n, 1, epoch, "cpu", buffer).tolist()
        assert sorted(order) == list(range(n))
        # Item i enters the buffer after i - buffer + 1 outputs: never earlier.
        position = np.empty(n, dtype=int)
        position[order] = np.arange(n)
        assert np.all(position >= np.arange(n) - buffer + 1)
        firsts.append(order[0])
        dropped += order[-50:]  # a remainder that batching drops
    assert max(firsts) < buffer and len(set(firsts)) > 10
    # The dropped items come mostly from the last `buffer` items of the file.
    assert np.mean(np.array(dropped) >= n - buffer) > 0.5
    # A full permutation drops items from anywhere.
    full = [i for e in range(20) for i in epoch_order(n, 1, e, "cpu").tolist()[-50:]]
    assert np.mean(np.array(full) >= n - buffer) < 0.15


def test_buffer_shuffle_depends_only_on_seed_and_epoch():
    a = epoch_order(500, 3, 7, "cpu", 64)
    assert torch.equal(a, epoch_order(500, 3, 7, "cpu", 64))
    assert not torch.equal(a, epoch_order(500, 3, 8, "cpu", 64))
    assert not torch.equal(a, epoch_order(500, 4, 7, "cpu", 64))
    # A buffer as large as the data is a uniform permutation: the unbuffered order.
    assert torch.equal(epoch_order(500, 3, 7, "cpu", 500), epoch_order(500, 3, 7, "cpu"))


def test_grey_limits():
    image = np.array([[100, 140], [120, 130]], dtype=np.uint8)
    assert grey_limits(image, "fixed") == (0.0, 255.0)
    assert grey_limits(image, "per-image") == (100.0, 140.0)
    assert grey_limits(np.full((2, 2), 7, np.uint8), "per-image") == (7.0, 8.0)


@pytest.mark.parametrize("scaling, limits", [("fixed", (0, 255)), ("per-image", (100, 140))])
def test_samples_figure_scales_as_the_run_says(tmp_path, monkeypatch, scaling, limits):
    # Faint images (values 100-140): the run's config decides the grey range imshow gets.
    import json

    from matplotlib.axes import Axes

    from wganlab.base.images import grid_png
    from wganlab.reporting.plots import samples_by_epoch

    (tmp_path / "samples").mkdir()
    images = torch.full((8, 1, 28, 28), 100, dtype=torch.uint8)
    images[:, :, 8:20, 8:20] = 140
    (tmp_path / "samples" / "epoch-001.png").write_bytes(grid_png(images))
    (tmp_path / "config.json").write_text(json.dumps({"run": {"sample_scaling": scaling}}))
    drawn = []
    imshow = Axes.imshow
    monkeypatch.setattr(Axes, "imshow", lambda ax, image, **kw: drawn.append(
        (kw["vmin"], kw["vmax"])) or imshow(ax, image, **kw))
    samples_by_epoch(tmp_path, (1, 28, 28), tmp_path / "fig.png")
    assert drawn == [limits] * 5 and (tmp_path / "fig.png").exists()

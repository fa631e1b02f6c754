"""The augmentation maths (wganlab/augment.py) against results worked out by hand on tiny
images, p = 0 as the identity, and gradients that reach the generator's images."""

import pytest
import torch

from wganlab import augment as A

X = torch.arange(16.0).view(1, 1, 4, 4)  # rows [0 1 2 3], [4 5 6 7], [8 9 10 11], [12..15]


def test_translation_by_hand():
    # One row down, one column left: out[i, j] = x[i - 1, j + 1], zeros where that is outside.
    got = A.translate(X, torch.tensor([1.0]), torch.tensor([-1.0]))
    want = torch.tensor([[0, 0, 0, 0], [1, 2, 3, 0], [5, 6, 7, 0], [9, 10, 11, 0.]])
    assert torch.equal(got[0, 0], want)
    assert torch.equal(A.translate(X, torch.zeros(1), torch.zeros(1)), X)


def test_cutout_by_hand():
    # A 2x2 square centred at (1, 2): top-left corner (0, 1).
    got = A.cutout(X, torch.tensor([1.0]), torch.tensor([2.0]), (2, 2))
    want = X.clone()
    want[0, 0, 0:2, 1:3] = 0
    assert torch.equal(got, want)
    # Centred at a corner it is clipped: only (0, 0) goes.
    corner = A.cutout(X, torch.tensor([0.0]), torch.tensor([0.0]), (2, 2))
    assert corner[0, 0, 0, 0] == 0 and int((corner == 0).sum()) == 1


def test_brightness_and_contrast_by_hand():
    x = torch.tensor([[[[0.0, 0.5], [-0.5, 1.0]]]])  # mean 0.25
    assert torch.allclose(A.brightness(x, torch.tensor([0.25])),
                          torch.tensor([[[[0.25, 0.75], [-0.25, 1.25]]]]))
    # contrast 2: 0.25 + 2 * (x - 0.25)
    assert torch.allclose(A.contrast(x, torch.tensor([2.0])),
                          torch.tensor([[[[-0.25, 0.75], [-1.25, 1.75]]]]))


def test_saturation_by_hand():
    # One RGB pixel (0.6, 0.0, 0.0), grey 0.2: factor 0.5 gives (0.4, 0.1, 0.1); 0 gives grey.
    x = torch.tensor([0.6, 0.0, 0.0]).view(1, 3, 1, 1)
    assert torch.allclose(A.saturation(x, torch.tensor([0.5])).flatten(),
                          torch.tensor([0.4, 0.1, 0.1]))
    assert torch.allclose(A.saturation(x, torch.tensor([0.0])).flatten(), torch.full((3,), 0.2))


def test_augment_maps_the_draws_to_the_transforms():
    # Two 8x8 images; translation by draws: s = 1 pixel, so dy = floor(u * 3) - 1.
    x = torch.randn(2, 1, 8, 8)
    u = torch.tensor([[0.0, 0.99, 0.0], [0.5, 0.5, 0.5]])  # image 1: not applied (p 0.3)
    got = A.augment(x, u, 0.3, ("translation",))
    assert torch.equal(got[0], A.translate(x[:1], torch.tensor([1.0]), torch.tensor([-1.0]))[0])
    assert torch.equal(got[1], x[1])
    # Colour on a grey image: brightness +0.25, contrast 0.5 + 0.9; saturation is skipped.
    u = torch.tensor([[0.0, 0.75, 0.0, 0.123, 0.0, 0.9]])
    want = A.contrast(A.brightness(x[:1], torch.tensor([0.25])), torch.tensor([1.4]))
    assert torch.allclose(A.augment(x[:1], u, 1.0, ("colour",)), want)
    # Cutout of 4x4 (half the side) centred at (floor(0.5 * 8), floor(0.25 * 8)) = (4, 2).
    u = torch.tensor([[0.0, 0.5, 0.25]])
    assert torch.equal(A.augment(x[:1], u, 1.0, ("cutout",)),
                       A.cutout(x[:1], torch.tensor([4.0]), torch.tensor([2.0]), (4, 4)))


@pytest.mark.parametrize("channels", [1, 3])
def test_p_zero_is_the_identity_bit_for_bit(channels):
    policies = A.parse_policies("translation,cutout,colour")
    x = torch.randn(5, channels, 8, 8)
    u = torch.rand(5, A.draws_needed(policies))
    assert torch.equal(A.augment(x, u, 0.0, policies), x)
    assert torch.equal(A.augment(x, u, torch.tensor(0.0), policies), x)
    assert not torch.equal(A.augment(x, u, 1.0, policies), x)  # and p = 1 does change them


def test_gradients_reach_the_generators_images():
    policies = A.parse_policies("colour,translation,cutout")
    fake = torch.randn(4, 3, 8, 8, requires_grad=True)
    u = torch.rand(4, A.draws_needed(policies))
    A.augment(fake, u, 1.0, policies).square().sum().backward()
    assert fake.grad is not None and all(g.abs().sum() > 0 for g in fake.grad)


def test_xflip_mirrors_the_drawn_images():
    x = torch.randn(2, 1, 3, 3)
    got = A.xflip(x, torch.tensor([0.2, 0.7]))
    assert torch.equal(got[0], x[0].flip(-1)) and torch.equal(got[1], x[1])


def test_policies_parse_in_application_order():
    assert A.parse_policies("cutout, translation,color") == ("colour", "translation", "cutout")
    assert A.parse_policies("none") == () and A.draws_needed(()) == 0
    for bad in ("crop", "translation,translation", "none,cutout"):
        with pytest.raises(ValueError):
            A.parse_policies(bad)

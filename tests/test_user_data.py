"""Images from Python (wganlab.data.user): the checks named data sets get, and conversions
checked against hand-computed pixels."""

import numpy as np
import pytest
import torch
from PIL import Image

from wganlab.data.user import as_uint8, from_images
from wganlab.errors import DataError


class Pairs(torch.utils.data.Dataset):
    """A torchvision-style data set: (image, label) items."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], i % 10


def test_floats_are_quantised_like_the_generators_output():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.2, 1.0]).view(5, 1, 1, 1)
    # round((x + 1) * 127.5): 0, 63.75 -> 64, 127.5 -> 128 (half to even), 153, 255
    assert as_uint8(x).flatten().tolist() == [0, 64, 128, 153, 255]
    assert as_uint8(x.double()).dtype == torch.uint8


def test_uint8_and_small_integers_pass_unchanged():
    x = torch.randint(0, 256, (4, 3, 5, 6), dtype=torch.uint8)
    assert torch.equal(as_uint8(x), x)
    assert torch.equal(as_uint8(x.numpy().astype(np.int64)), x)


def test_a_dataset_of_pairs_tensors_or_pil_images_is_stacked():
    pixels = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    data = from_images(Pairs(pixels))
    assert torch.equal(data.images, pixels) and data.name == "user"
    assert data.labels.tolist() == [i % 10 for i in range(6)]  # the pairs' labels come along
    assert data.class_names == tuple(str(k) for k in range(6))
    assert "Pairs: 6 images, (1, 8, 8)" in data.source
    pil = [Image.fromarray(p[0].numpy()) for p in pixels]
    assert torch.equal(from_images(Pairs(pil)).images, pixels)
    rgb = [Image.fromarray(np.stack([p[0].numpy()] * 3, axis=-1)) for p in pixels]
    assert torch.equal(from_images(Pairs(rgb)).images, pixels.repeat(1, 3, 1, 1))


def test_image_shape_resizes_and_converts_as_named_data_sets_do():
    grey = torch.full((3, 1, 16, 16), 200, dtype=torch.uint8)
    data = from_images(grey, image_shape=(3, 8, 8))
    assert data.images.shape == (3, 3, 8, 8) and int(data.images.min()) == 200


@pytest.mark.parametrize("images, message", [
    ([[1, 2]], "give a torch tensor or NumPy array"),
    (torch.zeros(4, 28, 28), "has 3 axes; images are (N, C, H, W)"),
    (torch.zeros(4, 28, 28, 3), "looks channels-last"),
    (torch.zeros(4, 2, 8, 8), "has 2 channels; C must be 1 or 3"),
    (torch.zeros(1, 1, 8, 8, dtype=torch.uint8), "1 image(s); training needs at least 2"),
    (torch.zeros(0, 1, 8, 8), "holds no pixels"),
    (torch.zeros(4, 1, 8, 8, dtype=torch.bool), "dtype bool"),
    (torch.full((4, 1, 8, 8), 300, dtype=torch.int32), "values run from 300 to 300"),
    (torch.full((4, 1, 8, 8), 200.0), "for [0, 255] pixels pass images.to(torch.uint8)"),
    (torch.full((4, 1, 8, 8), -1.5), "must lie in [-1, 1]"),
    (torch.tensor([0.0, float("nan")] * 32).view(4, 1, 4, 4), "values are NaN or infinite"),
    (np.array([["a"]] * 4, dtype=object), "is not a pixel type"),
])
def test_bad_images_are_named(images, message):
    with pytest.raises(DataError) as info:
        from_images(images)
    assert message in str(info.value)


def test_items_of_different_shapes_name_the_item():
    items = [torch.zeros(1, 8, 8), torch.zeros(1, 8, 8), torch.zeros(1, 9, 8)]
    with pytest.raises(DataError, match=r"Dataset item 2: \(1, 9, 8\)"):
        from_images(Pairs(items))
    with pytest.raises(DataError, match="Dataset item 0: shape"):
        from_images(Pairs([torch.zeros(8, 8)] * 3))


def test_zero_to_one_floats_warn():
    with pytest.warns(UserWarning, match=r"images \* 2 - 1"):
        from_images(torch.rand(4, 1, 8, 8) * 0.9 + 0.05)

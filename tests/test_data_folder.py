"""Image folders: discovery, channels, resize and centre crop, splits, bad-file policy."""

import numpy as np
import pytest
import torch
from PIL import Image

from wganlab.data import load_dataset
from wganlab.data.folder import BadImageWarning
from wganlab.errors import DataError


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)
    return path


def test_finds_png_and_jpeg_recursively_any_case(tmp_path):
    red = np.zeros((10, 10, 3), np.uint8)
    red[..., 0] = 255
    save(tmp_path / "a.png", red)
    save(tmp_path / "sub" / "b.JPG", red)
    save(tmp_path / "sub" / "deeper" / "c.Jpeg", red)
    save(tmp_path / "skip.bmp", red)  # not a PNG/JPEG: ignored
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_dataset(f"folder:{tmp_path}")
    assert data.images.shape == (3, 3, 64, 64)  # the default folder shape
    assert data.labels is None and data.num_classes is None
    assert data.source == str(tmp_path)
    assert data.images[:, 0].float().mean() > 240 and data.images[:, 1:].float().mean() < 15


def test_grey_and_rgb_conversion(tmp_path):
    save(tmp_path / "grey.png", np.full((8, 8), 100))
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 200
    save(tmp_path / "rgb.png", rgb)
    as_grey = load_dataset(f"folder:{tmp_path}", image_shape=(1, 8, 8))
    assert as_grey.images.shape == (2, 1, 8, 8)
    assert sorted(int(v) for v in as_grey.images[:, 0, 4, 4]) == [100, round(0.587 * 200)]
    as_rgb = load_dataset(f"folder:{tmp_path}", image_shape=(3, 8, 8))
    assert as_rgb.images[0, :, 4, 4].tolist() == [100, 100, 100]  # grey.png sorts first


def test_shorter_side_resized_then_centre_cropped(tmp_path):
    # 40 wide x 20 high: left quarter black, middle half white, right quarter black.
    image = np.zeros((20, 40), np.uint8)
    image[:, 10:30] = 255
    save(tmp_path / "wide.png", image)
    data = load_dataset(f"folder:{tmp_path}", image_shape=(1, 10, 10))
    # Height 20 -> 10 (width 40 -> 20), then the centre 10 columns: all from the white band.
    assert data.images.shape == (1, 1, 10, 10)
    assert int(data.images.min()) > 230
    tall = load_dataset(f"folder:{tmp_path}", image_shape=(1, 20, 10))
    # Scaled to cover 20x10 then cropped: left and right edges of the crop stay in the band.
    assert tall.images.shape == (1, 1, 20, 10) and int(tall.images.min()) > 230


def test_upscales_small_images(tmp_path):
    save(tmp_path / "tiny.png", np.full((4, 4), 77))
    data = load_dataset(f"folder:{tmp_path}", image_shape=(1, 16, 16))
    assert data.images.shape == (1, 1, 16, 16)
    assert torch.all(data.images == 77)


def test_train_and_test_subfolders_are_used_as_splits(tmp_path):
    save(tmp_path / "train" / "a.png", np.full((8, 8), 10))
    save(tmp_path / "train" / "b.png", np.full((8, 8), 10))
    save(tmp_path / "test" / "c.png", np.full((8, 8), 20))
    name = f"folder:{tmp_path}"
    assert len(load_dataset(name, "train", image_shape=(1, 8, 8))) == 2
    test = load_dataset(name, "test", image_shape=(1, 8, 8))
    assert len(test) == 1 and int(test.images.max()) == 20 and test.split == "test"


def test_empty_or_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .png/.jpg/.jpeg images"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(DataError, match="folder:PATH"):
        load_dataset("folder:")


def test_bad_file_error_then_skip(tmp_path):
    save(tmp_path / "good.png", np.full((8, 8), 50))
    (tmp_path / "bad.png").write_text("this is text, not a PNG")
    name = f"folder:{tmp_path}"
    with pytest.raises(DataError, match="bad.png") as info:
        load_dataset(name, image_shape=(1, 8, 8))
    assert "1 of 2" in str(info.value) and "good.png" not in str(info.value)
    with pytest.warns(BadImageWarning, match="skipped 1 of 2"):
        data = load_dataset(name, image_shape=(1, 8, 8), on_bad_image="skip")
    assert len(data) == 1 and int(data.images.max()) == 50


def test_on_bad_image_value_is_checked(tmp_path):
    with pytest.raises(ValueError, match="on_bad_image"):
        load_dataset(f"folder:{tmp_path}", on_bad_image="ignore")

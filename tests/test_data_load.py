"""load_dataset and its helpers: shapes, scaling, z, synthetic, CIFAR-10, real Fashion-MNIST."""

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from wganlab.data import load_dataset, native_shape, sample_z, sources, to_float, write_idx
from wganlab.data.tensors import convert_channels, resize_crop
from wganlab.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("WGANLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("WGANLAB_MIRROR", "http://127.0.0.1:9/")  # never the real web


def test_native_shapes():
    assert native_shape("mnist") == (1, 28, 28)
    assert native_shape("fashion-mnist") == (1, 28, 28)
    assert native_shape("cifar10") == (3, 32, 32)
    assert native_shape("synthetic") == (1, 28, 28)
    assert native_shape("folder:/any/where") is None
    with pytest.raises(DataError, match="imagenet"):
        native_shape("imagenet")


def test_unknown_name_and_bad_split():
    with pytest.raises(DataError, match="'svhn'"):
        load_dataset("svhn")
    with pytest.raises(ValueError, match="split.*'valid'"):
        load_dataset("synthetic", split="valid")
    with pytest.raises(ValueError, match="image_shape"):
        load_dataset("synthetic", image_shape=(2, 28, 28))
    with pytest.raises(ValueError, match="image_shape"):
        load_dataset("synthetic", image_shape=(1, 28.5, 28))
    assert load_dataset("synthetic", image_shape=[1, 8, 8]).images.shape == (1024, 1, 8, 8)


def test_to_float_maps_0_255_to_minus_one_one():
    x = torch.tensor([0, 127, 255], dtype=torch.uint8)
    y = to_float(x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, torch.tensor([-1.0, 127 / 127.5 - 1, 1.0]))
    with pytest.raises(TypeError, match="uint8"):
        to_float(y)


@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_sample_z_is_reproducible_and_in_range(dist):
    a = sample_z(4000, 8, dist, generator=torch.Generator().manual_seed(3))
    b = sample_z(4000, 8, dist, generator=torch.Generator().manual_seed(3))
    assert a.shape == (4000, 8) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    if dist == "uniform":
        assert a.min() >= -1 and a.max() <= 1 and abs(float(a.mean())) < 0.03
        assert abs(float(a.var()) - 1 / 3) < 0.02  # variance of U[-1, 1]
    else:
        assert abs(float(a.mean())) < 0.03 and abs(float(a.std()) - 1) < 0.03
        assert a.min() < -3  # unbounded, unlike the uniform


def test_sample_z_rejects_unknown_dist():
    with pytest.raises(ValueError, match="'gauss'"):
        sample_z(2, 3, "gauss")


def test_synthetic_is_deterministic_offline_and_labelled(tmp_path):
    # Made in memory: no file is read or written (the cache stays absent).
    a = load_dataset("synthetic")
    b = load_dataset("synthetic")
    test = load_dataset("synthetic", "test")
    assert not (tmp_path / "cache").exists()
    assert a.images.shape == (1024, 1, 28, 28) and a.images.dtype == torch.uint8
    assert test.images.shape == (256, 1, 28, 28)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images[:256], test.images)
    assert a.labels.dtype == torch.int64 and a.num_classes == 10
    assert torch.equal(a.labels.bincount(), torch.full((10,), 102) + (torch.arange(10) < 4))


def test_synthetic_classes_differ_and_bars_are_bright():
    data = load_dataset("synthetic")
    means = torch.stack([data.images[data.labels == k].float().mean(0) for k in range(10)])
    # Every class mean image differs clearly from every other (different bar angles).
    gaps = torch.cdist(means.flatten(1), means.flatten(1))
    assert float(gaps[~torch.eye(10, dtype=bool)].min()) > 100
    assert int(data.images.amax(dim=(1, 2, 3)).min()) > 200


def test_synthetic_rgb_at_requested_shape():
    data = load_dataset("synthetic", image_shape=(3, 32, 48))
    assert data.images.shape == (1024, 3, 32, 48)
    # Coloured by class: the channels are not all equal.
    assert not torch.equal(data.images[:, 0], data.images[:, 1])


def test_resize_crop_and_channels_on_known_pattern():
    # Left half dark, right half bright, 28x28 -> 32x32 keeps the halves.
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    x[..., 14:] = 200
    y = resize_crop(x, 32, 32)
    assert y.shape == (2, 1, 32, 32)
    assert int(y[0, 0, 5, 2]) == 0 and int(y[0, 0, 5, 29]) == 200
    # Wider target: scaled to cover, then the centre cropped.
    wide = resize_crop(x, 14, 28)
    assert wide.shape == (2, 1, 14, 28) and int(wide[0, 0, 0, 0]) == 0
    rgb = convert_channels(x, 3)
    assert rgb.shape == (2, 3, 28, 28) and torch.equal(rgb[:, 2:], x)
    coloured = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert int(convert_channels(coloured, 1)[0, 0, 0, 0]) == round(0.299 * 255)


def test_idx_data_set_at_other_shape(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    images[:, 10:18, 10:18] = 255
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    native = load_dataset("mnist", data_dir=tmp_path, download=False)
    assert native.images.shape == (3, 1, 28, 28)
    assert torch.equal(native.images[:, 0], torch.from_numpy(images))
    big = load_dataset("mnist", data_dir=tmp_path, download=False, image_shape=(3, 32, 32))
    assert big.images.shape == (3, 3, 32, 32) and big.images.dtype == torch.uint8
    assert int(big.images[0, 1, 16, 16]) == 255 and int(big.images[0, 1, 1, 1]) == 0
    assert big.labels.tolist() == [1, 2, 3] and big.source == str(tmp_path)


def _cifar_batch(n: int, label_offset: int) -> bytes:
    """n records whose R, G, B planes are constant 10*label, +1, +2 (so layout errors show)."""
    out = bytearray()
    for i in range(n):
        label = (i + label_offset) % 10
        out.append(label)
        for channel in range(3):
            out += bytes([10 * label + channel]) * 1024
    return bytes(out)


def _add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _cifar_tar(path: Path, extra=None):
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            _add(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", _cifar_batch(2, i))
        _add(tar, "cifar-10-batches-bin/test_batch.bin", _cifar_batch(3, 0))
        _add(tar, "cifar-10-batches-bin/batches.meta.txt", b"airplane\n")
        for name, data in extra or []:
            _add(tar, name, data)
    return path


def test_cifar10_from_binary_tar(tmp_path):
    _cifar_tar(tmp_path / sources.CIFAR_ARCHIVE)
    train = load_dataset("cifar10", data_dir=tmp_path, download=False)
    test = load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert train.images.shape == (10, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert train.labels.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    for image, label in zip(train.images, train.labels, strict=True):
        assert image[:, 7, 9].tolist() == [10 * label, 10 * label + 1, 10 * label + 2]
    grey = load_dataset("cifar10", "test", data_dir=tmp_path, download=False,
                        image_shape=(1, 16, 16))
    assert grey.images.shape == (3, 1, 16, 16)


def test_cifar10_from_extracted_bins(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(_cifar_batch(4, 5))
    data = load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    assert data.labels.tolist() == [5, 6, 7, 8]


def test_cifar10_rejects_partial_record_and_bad_label(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(_cifar_batch(2, 0)[:-1])
    with pytest.raises(DataError, match="test_batch.bin: 6145 bytes"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)
    (folder / "test_batch.bin").write_bytes(b"\x0b" + bytes(3072))
    with pytest.raises(DataError, match="label 11"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)


def test_cifar10_tar_is_never_extracted_to_disk(tmp_path):
    # A member aimed outside the folder is ignored: we read an allowlist into memory only.
    work = tmp_path / "work"
    work.mkdir()
    _cifar_tar(work / sources.CIFAR_ARCHIVE, extra=[("../../escaped.bin", b"x")])
    load_dataset("cifar10", "test", data_dir=work, download=False)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cifar-10-binary.tar.gz", "work"]
    assert not (tmp_path.parent / "escaped.bin").exists()


def test_cifar10_tar_with_symlink_member_is_refused(tmp_path):
    with tarfile.open(tmp_path / sources.CIFAR_ARCHIVE, "w:gz") as tar:
        link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DataError, match="not a regular file"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)


def test_cifar10_python_version_is_not_accepted(tmp_path):
    with tarfile.open(tmp_path / sources.CIFAR_ARCHIVE, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/test_batch", b"\x80\x04pickle")
    with pytest.raises(DataError, match="missing test_batch.bin"):
        load_dataset("cifar10", "test", data_dir=tmp_path, download=False)


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist_from_debian_folder():
    train = load_dataset("fashion-mnist", "train", download=False)
    test = load_dataset("fashion-mnist", "test", download=False)
    assert train.source == str(DEBIAN)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.labels.unique().tolist() == list(range(10))
    assert torch.equal(train.labels.bincount(), torch.full((10,), 6000))
    assert torch.equal(test.labels.bincount(), torch.full((10,), 1000))
    assert int(train.images.max()) == 255 and int(train.images.min()) == 0

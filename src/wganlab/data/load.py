"""load_dataset: one entry point from a data set's name to a Dataset of uint8 tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from . import cifar, sources
from .folder import load_folder
from .idx import load_idx_pair
from .synthetic import make_synthetic
from .tensors import Dataset, check_shape, fit_shape

NATIVE_SHAPES = {
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "synthetic": (1, 28, 28),
}
FOLDER_PREFIX = "folder:"
FOLDER_DEFAULT_SHAPE = (3, 64, 64)
SPLITS = ("train", "test")
NUM_CLASSES = 10  # of every named data set here
# Each named data set's classes, label k the k-th (the data sets' own documentation).
CLASS_NAMES = {
    "mnist": tuple(str(k) for k in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"),
    "synthetic": tuple(f"bar {18 * k} deg" for k in range(10)),  # a bar at k * 18 degrees
}


def _known_names() -> str:
    return ", ".join(NATIVE_SHAPES) + f" or {FOLDER_PREFIX}PATH"


def native_shape(name: str) -> tuple[int, int, int] | None:
    """(C, H, W) the data set is stored at; None for image folders (they have no one size)."""
    if name.startswith(FOLDER_PREFIX):
        return None
    if name not in NATIVE_SHAPES:
        raise DataError(f"unknown data set {name!r}; choose {_known_names()}")
    return NATIVE_SHAPES[name]


def _load_folder(name: str, split: str, image_shape, on_bad_image: str) -> Dataset:
    if not name[len(FOLDER_PREFIX):]:
        raise DataError(f"data set {name!r}: give the folder, as folder:PATH")
    root = Path(name[len(FOLDER_PREFIX):]).expanduser()
    # A folder with train/ and test/ inside is split by them; any other folder is one pool,
    # returned for either split.
    if (root / split).is_dir():
        root = root / split
    shape = check_shape(image_shape or FOLDER_DEFAULT_SHAPE)
    images, labels, names = load_folder(root, shape, on_bad_image, with_labels=True)
    if labels is None:
        return Dataset(torch.from_numpy(images), None, name, split, str(root), None)
    return Dataset(torch.from_numpy(images), torch.from_numpy(labels), name, split, str(root),
                   len(names), names)


def _load_files(name: str, split: str, data_dir, download: bool):
    """(images uint8 NCHW numpy, labels int64 numpy, source) for the file-backed data sets."""
    if name == "cifar10":
        paths, source = sources.locate(name, split, data_dir, download,
                                       finder=cifar.finder_for(split))
        images, labels = cifar.load_cifar10(paths, split)
        return images, labels, source
    paths, source = sources.locate(name, split, data_dir, download)
    images, labels = load_idx_pair(paths[0], paths[1], NATIVE_SHAPES[name][1:], NUM_CLASSES)
    return images[:, None], labels.astype(np.int64), source


def load_dataset(name: str, split: str = "train", data_dir=None, image_shape=None,
                 on_bad_image: str = "error", download: bool = True) -> Dataset:
    """Load a named data set's split as uint8 images (and labels) at image_shape.

    name: mnist | fashion-mnist | cifar10 | synthetic | folder:PATH. image_shape (C, H, W)
    defaults to the data set's own; anything else is resized and converted. Files are looked
    for in data_dir, then the cache, then system folders, then downloaded (if download).
    """
    if not (name in NATIVE_SHAPES or name.startswith(FOLDER_PREFIX)):
        raise DataError(f"unknown data set {name!r}; choose {_known_names()}")
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if on_bad_image not in ("error", "skip"):
        raise ValueError(f"on_bad_image must be 'error' or 'skip'; got {on_bad_image!r}")
    if name.startswith(FOLDER_PREFIX):
        return _load_folder(name, split, image_shape, on_bad_image)

    shape = check_shape(image_shape or NATIVE_SHAPES[name])
    if name == "synthetic":
        images, labels = make_synthetic(split, shape)
        return Dataset(torch.from_numpy(images), torch.from_numpy(labels), name, split,
                       "generated (wganlab.data.synthetic)", NUM_CLASSES, CLASS_NAMES[name])

    images, labels, source = _load_files(name, split, data_dir, download)
    tensor = fit_shape(torch.from_numpy(images), shape)
    return Dataset(tensor, torch.from_numpy(labels), name, split, source, NUM_CLASSES,
                   CLASS_NAMES[name])

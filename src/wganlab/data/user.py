"""Your own images from Python: a tensor, an array or a torch Dataset, checked and turned into
the same Dataset record the named data sets give (uint8, (N, C, H, W), at one image shape).

Each way the images can be unusable (type, shape, dtype, value range, too few of them) is a
DataError that says what was given and what to pass instead.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..errors import DataError
from .tensors import Dataset, check_shape, fit_shape

NAME = "user"  # the config's dataset name for images given from Python
MIN_IMAGES = 2  # a batch needs two images; the training loop also checks the batch size
FLOAT_SLACK = 1e-3  # float rounding around [-1, 1] that still counts as inside it


def as_uint8(images, what: str = "images") -> torch.Tensor:
    """A tensor or array of images (N, C, H, W) as uint8 pixels, after every check.

    uint8 and other integer types must lie in [0, 255]; floats must be finite and lie in
    [-1, 1] (the generator's range) and are quantised as round((x + 1) * 127.5).
    """
    tensor = _as_tensor(images, what)
    _check_layout(tensor, what)
    if tensor.dtype == torch.uint8:
        return tensor
    if tensor.dtype == torch.bool:
        raise DataError(f"{what}: dtype bool; give uint8 pixels in [0, 255] or floats in "
                        "[-1, 1]")
    if not tensor.dtype.is_floating_point:
        low, high = int(tensor.min()), int(tensor.max())
        if low < 0 or high > 255:
            raise DataError(f"{what}: {tensor.dtype} values run from {low} to {high}; "
                            "integer pixels must lie in [0, 255]")
        return tensor.to(torch.uint8)
    return _quantise(tensor, what)


def from_images(images, image_shape=None, labels=None, class_names=None) -> Dataset:
    """The user's images as a training Dataset named "user", resized to image_shape if given.

    images: a uint8 / integer / float tensor or NumPy array (N, C, H, W) with C 1 or 3, or a
    map-style torch.utils.data.Dataset whose items are such images (C, H, W), PIL images, or
    (image, label) pairs. labels: class indices (N,) for a tensor or array of images (a
    Dataset's pairs carry their own); class_names name them (default "0", "1", ...).
    """
    if isinstance(images, torch.utils.data.Dataset):
        tensor, kind = _stack_items(images), type(images).__name__
        pairs = _item_labels(images)
        labels = pairs if labels is None else labels
    else:
        tensor, kind = images, type(images).__name__
    pixels = as_uint8(tensor)
    if len(pixels) < MIN_IMAGES:
        raise DataError(f"images: {len(pixels)} image(s); training needs at least "
                        f"{MIN_IMAGES} (and at least --batch-size of them)")
    if image_shape is not None:
        pixels = fit_shape(pixels, check_shape(image_shape))
    source = f"Python {kind}: {len(pixels)} images, {tuple(pixels.shape[1:])}"
    if labels is None:
        return Dataset(pixels.contiguous(), None, NAME, "train", source, None)
    classes = check_labels(labels, len(pixels))
    count = len(class_names) if class_names else int(classes.max()) + 1
    if int(classes.max()) >= count:
        raise DataError(f"labels: label {int(classes.max())} has no name: class_names names "
                        f"{count} classes (0-{count - 1})")
    names = tuple(class_names) if class_names else tuple(str(k) for k in range(count))
    return Dataset(pixels.contiguous(), classes, NAME, "train", source, count, names)


def check_labels(labels, n: int) -> torch.Tensor:
    """Class labels for n images as int64 (n,), or a DataError saying what to pass."""
    tensor = _as_tensor(labels, "labels") if not isinstance(labels, (list, tuple)) else \
        torch.as_tensor(labels)
    if tensor.dtype.is_floating_point or tensor.dtype == torch.bool or tensor.ndim != 1:
        raise DataError(f"labels: {tensor.dtype} of shape {tuple(tensor.shape)}; give class "
                        "indices 0, 1, ..., one integer per image (N,)")
    if len(tensor) != n:
        raise DataError(f"labels: {len(tensor)} labels for {n} images; give one per image")
    if int(tensor.min()) < 0:
        raise DataError(f"labels: {int(tensor.min())} is negative; classes are 0, 1, ...")
    return tensor.to(torch.int64).contiguous()


def _item_labels(dataset) -> torch.Tensor | None:
    """The labels of a Dataset of (image, label) pairs; None for one of bare images."""
    first = dataset[0]
    if not (isinstance(first, (tuple, list)) and len(first) >= 2):
        return None
    labels = []
    for i in range(len(dataset)):
        label = dataset[i][1]
        try:
            labels.append(int(label))
        except (TypeError, ValueError):
            raise DataError(f"Dataset item {i}: label {label!r} is not a class index") from None
    return torch.tensor(labels, dtype=torch.int64)


def _as_tensor(images, what: str) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        if images.dtype == object or not (np.issubdtype(images.dtype, np.number)
                                          or images.dtype == bool):
            raise DataError(f"{what}: NumPy dtype {images.dtype} is not a pixel type")
        return torch.from_numpy(np.array(images, order="C"))  # a copy: arrays may be read-only
    if isinstance(images, torch.Tensor):
        return images.detach().cpu()
    raise DataError(f"{what}: got {type(images).__name__}; give a torch tensor or NumPy array "
                    "(N, C, H, W), or a torch.utils.data.Dataset of images")


def _check_layout(tensor: torch.Tensor, what: str) -> None:
    shape = tuple(tensor.shape)
    if tensor.ndim == 3:
        raise DataError(f"{what}: shape {shape} has 3 axes; images are (N, C, H, W): for one "
                        "grey channel add it with images[:, None]")
    if tensor.ndim != 4:
        raise DataError(f"{what}: shape {shape}; images are (N, C, H, W)")
    if shape[1] not in (1, 3):
        hint = ("; it looks channels-last (N, H, W, C): use images.permute(0, 3, 1, 2)"
                if shape[3] in (1, 3) else "")
        raise DataError(f"{what}: shape {shape} has {shape[1]} channels; C must be 1 or 3{hint}")
    if shape[0] == 0 or shape[2] < 1 or shape[3] < 1:
        raise DataError(f"{what}: shape {shape} holds no pixels")


def _quantise(tensor: torch.Tensor, what: str) -> torch.Tensor:
    values = tensor.float()
    if not torch.isfinite(values).all():
        raise DataError(f"{what}: {int((~torch.isfinite(values)).sum())} values are NaN or "
                        "infinite")
    low, high = float(values.min()), float(values.max())
    if low < -1 - FLOAT_SLACK or high > 1 + FLOAT_SLACK:
        hint = ("; for [0, 255] pixels pass images.to(torch.uint8)" if high > 2 else
                "; rescale them with images * 2 - 1 for [0, 1] pixels")
        raise DataError(f"{what}: float values run from {low:.4g} to {high:.4g}; float images "
                        f"must lie in [-1, 1], the generator's range{hint}")
    if low >= 0 and high > 0:
        warnings.warn(f"{what}: every float value is in [0, {high:.3g}]; wganlab reads floats "
                      "as [-1, 1] (0 is mid-grey). If these are [0, 1] pixels, pass "
                      "images * 2 - 1", UserWarning, stacklevel=3)
    return ((values.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _item_image(item, index: int) -> torch.Tensor:
    """One Dataset item as a (C, H, W) tensor (PIL images become uint8 arrays)."""
    if isinstance(item, (tuple, list)):
        if not item:
            raise DataError(f"Dataset item {index} is empty")
        item = item[0]  # (image, label) pairs, as torchvision data sets give
    if hasattr(item, "getbands"):  # a PIL image: (H, W) or (H, W, C) uint8
        array = np.asarray(item.convert("RGB" if len(item.getbands()) > 1 else "L"))
        item = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    tensor = _as_tensor(item, f"Dataset item {index}")
    if tensor.ndim != 3:
        raise DataError(f"Dataset item {index}: shape {tuple(tensor.shape)}; each item must "
                        "be one image (C, H, W), a PIL image, or an (image, label) pair")
    return tensor


def _stack_items(dataset) -> torch.Tensor:
    try:
        n = len(dataset)
    except TypeError:
        raise DataError(f"{type(dataset).__name__}: give a map-style Dataset with __len__ "
                        "(an iterable Dataset has no size to check)") from None
    if n < MIN_IMAGES:
        raise DataError(f"{type(dataset).__name__}: {n} item(s); training needs at least "
                        f"{MIN_IMAGES} images")
    first = _item_image(dataset[0], 0)
    out = torch.empty((n, *first.shape), dtype=first.dtype)
    out[0] = first
    for i in range(1, n):
        image = _item_image(dataset[i], i)
        if image.shape != first.shape or image.dtype != first.dtype:
            raise DataError(f"Dataset item {i}: {tuple(image.shape)} {image.dtype}, but item 0 "
                            f"is {tuple(first.shape)} {first.dtype}; every image must have "
                            "one shape and dtype (image folders are resized: "
                            "dataset='folder:PATH')")
        out[i] = image
    return out

"""Tensor helpers every data set shares: the Dataset record, scaling, reshaping, and z."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# ITU-R BT.601 luma weights, the ones Pillow's convert("L") uses, so folders and IDX agree.
LUMA = (0.299, 0.587, 0.114)
RESIZE_CHUNK = 4096  # images resized at a time: bounds the float copy for 60k MNIST images


@dataclass
class Dataset:
    """One split of a data set as uint8 images, with labels and provenance."""

    images: torch.Tensor  # uint8 (N, C, H, W), at the requested image_shape
    labels: torch.Tensor | None  # int64 (N,); None for image folders
    name: str  # "fashion-mnist", "folder:PATH", ...
    split: str  # "train" | "test"
    source: str  # where the files came from (path or URL), for provenance
    num_classes: int | None  # None when there are no labels
    class_names: tuple[str, ...] | None = None  # label k's name; None: no labels, or unnamed

    def __len__(self) -> int:
        return len(self.images)


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float32 in [-1, 1] (x / 127.5 - 1), the range of a tanh generator."""
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 images; got {images_uint8.dtype}")
    return images_uint8.to(torch.float32) / 127.5 - 1.0


def sample_z(n: int, z_dim: int, dist: str, generator: torch.Generator | None = None,
             device=None) -> torch.Tensor:
    """n latent vectors: "uniform" U[-1, 1] or "normal" N(0, 1), drawn from generator.

    With a generator the numbers are drawn on the generator's device and then moved, so the
    same seed gives the same z whatever device the model runs on.
    """
    if n < 0 or z_dim < 1:
        raise ValueError(f"sample_z: need n >= 0 and z_dim >= 1; got n={n}, z_dim={z_dim}")
    if dist not in ("uniform", "normal"):
        raise ValueError(f"sample_z: dist must be 'uniform' or 'normal'; got {dist!r}")
    where = generator.device if generator is not None else device
    if dist == "uniform":
        z = torch.rand(n, z_dim, generator=generator, device=where) * 2.0 - 1.0
    else:
        z = torch.randn(n, z_dim, generator=generator, device=where)
    return z if device is None else z.to(device)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (N, C, H, W) to 1 or 3 channels: grey -> RGB by repeating, RGB -> grey by luma."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return images.repeat(1, 3, 1, 1)
    if have == 3 and channels == 1:
        weights = torch.tensor(LUMA, dtype=torch.float32).view(1, 3, 1, 1)
        grey = (images.to(torch.float32) * weights).sum(dim=1, keepdim=True)
        return grey.round().clamp(0, 255).to(torch.uint8)
    raise ValueError(f"image_shape: cannot convert {have} channels to {channels}")


def resize_crop(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 (N, C, h, w) scaled so the shorter side fits, then centre-cropped to (height, width).

    Antialiased bilinear, so shrinking averages pixels instead of skipping them.
    """
    h, w = images.shape[-2:]
    if (h, w) == (height, width):
        return images
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    top, left = (new_h - height) // 2, (new_w - width) // 2
    out = torch.empty((len(images), images.shape[1], height, width), dtype=torch.uint8)
    for start in range(0, len(images), RESIZE_CHUNK):
        chunk = images[start:start + RESIZE_CHUNK].to(torch.float32)
        chunk = F.interpolate(chunk, size=(new_h, new_w), mode="bilinear", antialias=True,
                              align_corners=False)
        chunk = chunk[..., top:top + height, left:left + width]
        out[start:start + RESIZE_CHUNK] = chunk.round().clamp(0, 255).to(torch.uint8)
    return out


def check_shape(image_shape) -> tuple[int, int, int]:
    """A (C, H, W) tuple with C in {1, 3} and positive sizes, or ValueError naming it."""
    try:
        c, h, w = (operator.index(s) for s in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (C, H, W); got {image_shape!r}") from None
    if c not in (1, 3) or h < 1 or w < 1:
        raise ValueError(f"image_shape must have C in (1, 3) and positive H, W; "
                         f"got {image_shape!r}")
    return c, h, w


def fit_shape(images: torch.Tensor, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) at image_shape: unchanged when it already is."""
    c, h, w = image_shape
    return resize_crop(convert_channels(images, c), h, w)

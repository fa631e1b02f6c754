"""Image folders: every PNG/JPEG/TIFF below a path, resized and centre-cropped to one shape.

Bad files are collected, not raised one at a time, so a user fixes them all in one go.
Classes come from subfolder names: when every image lies inside a subfolder of the root
(root/Sneaker/1.png, root/Bag/2.jpg, ...), the subfolders, sorted, are the classes.
Pillow's LOAD_TRUNCATED_IMAGES stays off (a truncated JPEG is an error, not grey pixels), and
a decompression-bomb warning is promoted to an error here only, not process-wide.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
WIDE = {"I", "F", "I;16", "I;16L", "I;16B", "I;16N", "I;16S"}  # more than 8 bits a pixel
MODES = {1: "L", 3: "RGB"}
MAX_LISTED = 10


class BadImageWarning(UserWarning):
    """Some files in an image folder could not be read and were skipped."""


def image_files(root: Path) -> list[Path]:
    """All PNG/JPEG/TIFF files below root, any case of extension, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def fit_image(image: Image.Image, height: int, width: int) -> Image.Image:
    """Scale so the image covers height x width (shorter side fits), then crop the centre."""
    w, h = image.size
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), Image.Resampling.LANCZOS)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return image.crop((left, top, left + width, top + height))


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """The image in "L" or "RGB", with wide modes (16-bit, 32-bit, float) scaled into 0-255,
    never clipped (Pillow's own convert clips a 16-bit 0-65535 ramp to mostly white)."""
    if image.mode in WIDE:
        return Image.fromarray(scale_to_uint8(image)).convert(mode)
    if image.mode == "LAB":  # Pillow converts LAB only through a colour profile
        from PIL import ImageCms

        lab, srgb = ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB")
        image = ImageCms.applyTransform(image, ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))
    return image.convert(mode)


def scale_to_uint8(image: Image.Image) -> np.ndarray:
    """A one-channel wide image as uint8: 16-bit modes from 0-65535; 32-bit integers from
    0-65535 when they lie in it (how 16-bit data arrives in mode I), floats from 0-1 when
    they lie in it; otherwise from the image's own range. Nothing is clipped."""
    array = np.asarray(image).astype(np.float64)
    if image.mode == "I;16S":
        array += 32768.0
    low, high = 0.0, 65535.0
    if image.mode == "F":
        high = 1.0
    if image.mode in ("I", "F") and (array.min() < low or array.max() > high):
        low, high = float(array.min()), float(array.max())
    span = high - low if high > low else 1.0
    return np.round((array - low) * (255.0 / span)).astype(np.uint8)


def read_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One file as a (C, H, W) uint8 array; any failure propagates to the caller."""
    channels, height, width = shape
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.load()  # decode now, so truncation shows up here
            image = to_mode(image, MODES[channels])
    array = np.asarray(fit_image(image, height, width), dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def _reason(error: Exception, path: Path) -> str:
    # Pillow often repeats the path in its message; the listing already names the file.
    text = str(error).replace(f" '{path}'", "").replace(str(path), "").strip(" :")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _describe(bad: list[tuple[Path, str]]) -> str:
    lines = [f"{p}: {why}" for p, why in bad[:MAX_LISTED]]
    if len(bad) > MAX_LISTED:
        lines.append(f"... and {len(bad) - MAX_LISTED} more")
    return "; ".join(lines)


def folder_classes(root: Path, files: list[Path]) -> tuple[np.ndarray, tuple] | None:
    """(label per file, class names) when every file lies in a subfolder of root (its first
    part names the class, sorted order gives the index); else None (unlabelled)."""
    parts = [p.relative_to(root).parts for p in files]
    if any(len(part) < 2 for part in parts):
        return None
    names = tuple(sorted({part[0] for part in parts}))
    index = {name: k for k, name in enumerate(names)}
    return np.array([index[part[0]] for part in parts], dtype=np.int64), names


def load_folder(root, shape: tuple[int, int, int], on_bad_image: str = "error",
                with_labels: bool = False):
    """All images below root as (N, C, H, W) uint8. Bad files: raise, or skip with a warning.
    with_labels: (images, labels (N,) int64, class names) from the subfolders (see
    folder_classes), labels and names None when the folder has no class subfolders."""
    root = Path(root)
    if on_bad_image not in ("error", "skip"):
        raise ValueError(f"on_bad_image must be 'error' or 'skip'; got {on_bad_image!r}")
    if shape[0] not in MODES:
        raise ValueError(f"image_shape: channels must be 1 or 3; got {shape[0]}")
    if not root.is_dir():
        raise DataError(f"{root}: image folder does not exist or is not a folder")
    files = image_files(root)
    if not files:
        raise DataError(f"{root}: no .png/.jpg/.jpeg images, nor .tif/.tiff, found "
                        "(searched recursively)")

    images, bad, kept = [], [], []
    for path in files:
        try:
            images.append(read_image(path, shape))
            kept.append(path)
        # Pillow signals a broken file with many types (OSError, SyntaxError, ValueError,
        # struct.error, DecompressionBombError/Warning, ...): any of them means "bad file".
        except Exception as e:  # noqa: BLE001
            bad.append((path.relative_to(root), _reason(e, path)))

    if bad and on_bad_image == "error":
        raise DataError(f"{root}: {len(bad)} of {len(files)} image files cannot be read "
                        f"(use --on-bad-image skip to skip them): {_describe(bad)}")
    if bad:
        warnings.warn(f"{root}: skipped {len(bad)} of {len(files)} unreadable image files: "
                      f"{_describe(bad)}", BadImageWarning, stacklevel=2)
    if not images:
        raise DataError(f"{root}: none of the {len(files)} image files could be read")
    if not with_labels:
        return np.stack(images)
    classes = folder_classes(root, kept)
    return (np.stack(images), *(classes or (None, None)))

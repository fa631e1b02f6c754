"""Issue 21: every Pillow mode a PNG, JPEG or TIFF can carry is read with its tones kept:
16-bit, 32-bit and float images are scaled into 0-255, never clipped (Pillow's convert("L")
turned 94% of a 0-65535 ramp white). A horizontal ramp must come back as a ramp."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wganlab.data.folder import read_image

FORMATS = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif"}
RAMP = np.tile(np.linspace(0.0, 1.0, 32), (32, 1))  # 32x32, dark on the left


def ramp_in(mode: str) -> Image.Image | None:
    """A 0-to-full-scale ramp in `mode`, or None when Pillow cannot make one."""
    if mode.startswith("I;16"):  # from bytes: Pillow's convert between them loses the range
        order = {"I;16B": ">u2", "I;16L": "<u2", "I;16": "<u2", "I;16N": "=u2"}[mode]
        data = (RAMP * 65535).astype(order).tobytes()
        return _try(lambda: Image.frombytes(mode, (32, 32), data))
    if mode == "I":
        return Image.fromarray((RAMP * 65535).astype(np.int32))
    if mode == "F":
        return Image.fromarray(RAMP.astype(np.float32))
    grey = Image.fromarray((RAMP * 255).round().astype(np.uint8))
    if mode == "LAB":
        from PIL import ImageCms

        srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
        return ImageCms.applyTransform(grey.convert("RGB"),
                                       ImageCms.buildTransform(srgb, lab, "RGB", "LAB"))
    return _try(lambda: grey.convert(mode))


def _try(make):
    try:
        return make()
    except (ValueError, OSError):
        return None


def carried():
    """(format, mode) for every mode Pillow writes to that format and reads back."""
    found = []
    for mode in Image.MODES:
        image = ramp_in(mode)
        for fmt in FORMATS:
            if image is not None and _try(lambda i=image, f=fmt: i.save(_Sink(), f) or True):
                found.append((fmt, mode))
    return found


class _Sink:
    def write(self, data):
        return len(data)

    def seek(self, *a):
        return 0

    def tell(self):
        return 0

    def flush(self):
        pass


CARRIED = carried()


def test_the_modes_that_matter_are_covered():
    assert {("PNG", "I;16"), ("PNG", "L"), ("PNG", "P"), ("PNG", "RGBA"), ("PNG", "LA"),
            ("JPEG", "CMYK"), ("JPEG", "L"), ("TIFF", "I;16"), ("TIFF", "I"), ("TIFF", "F"),
            ("TIFF", "LAB"), ("TIFF", "YCbCr"), ("TIFF", "PA")} <= set(CARRIED)


@pytest.mark.parametrize("fmt, mode", CARRIED)
@pytest.mark.parametrize("channels", [1, 3])
def test_a_ramp_stays_a_ramp(fmt, mode, channels, tmp_path):
    path = tmp_path / f"ramp{FORMATS[fmt]}"
    ramp_in(mode).save(path, fmt)
    array = read_image(path, (channels, 32, 32)).astype(int)
    assert array.shape == (channels, 32, 32)
    row = array.mean(axis=(0, 1))  # brightness from left to right
    if mode == "1":  # one bit a pixel: dithered, only the trend survives
        assert row[:8].mean() < row[-8:].mean()
        return
    assert (array == 255).mean() < 0.1, "clipped to white"
    assert row[0] <= 12 and row[-1] >= 240, (row[0], row[-1])
    assert np.all(np.diff(row) >= -6), "not a ramp"

"""Pixel conversions over all 256 byte values against the hand formula.

Data: byte k -> k / 127.5 - 1 = (2k - 255) / 255, so 0 -> -1 and 255 -> 1 exactly.
Generated images: x in [-1, 1] -> the nearest byte to (x + 1) * 127.5, out-of-range values
clamped. Every FID, sample grid and exported PNG goes through these two functions.
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
import torch
from PIL import Image

from wganlab.base.images import PAD, grid_png, tiles, to_uint8
from wganlab.data import to_float

BYTES = torch.arange(256, dtype=torch.uint8)


def test_to_float_is_k_over_127_5_minus_1_for_every_byte():
    got = to_float(BYTES.view(1, 1, 16, 16)).flatten()
    assert got.dtype == torch.float32
    exact = [float(Fraction(2 * k - 255, 255)) for k in range(256)]
    # Within one float32 rounding of the exact rational value.
    np.testing.assert_allclose(got.numpy(), exact, rtol=0, atol=2 ** -23)
    assert got[0].item() == -1.0 and got[255].item() == 1.0
    assert bool((got[1:] > got[:-1]).all())
    np.testing.assert_allclose(got.numpy(), -got.flip(0).numpy(), rtol=0, atol=2 ** -23)


def test_to_uint8_inverts_to_float_for_every_byte():
    assert torch.equal(to_uint8(to_float(BYTES.view(256, 1, 1, 1))).flatten(), BYTES)


def test_to_uint8_rounds_to_the_nearest_byte_and_clamps():
    centres = torch.tensor([(2 * k - 255) / 255 for k in range(256)], dtype=torch.float64)
    for offset in (-0.45, -0.2, 0.2, 0.45):  # inside byte k's interval, either side of k
        x = (centres + offset / 127.5).clamp(-1, 1).float()
        expected = np.clip(np.rint((x.double().numpy() + 1) * 127.5), 0, 255).astype(np.uint8)
        got = to_uint8(x.view(256, 1, 1, 1)).flatten()
        assert got.dtype == torch.uint8
        assert np.array_equal(got.numpy(), expected), offset
        inner = slice(1, 255)  # where the offset does not leave [-1, 1]
        assert torch.equal(got[inner], BYTES[inner])
    outside = torch.tensor([-7.0, -1.0001, 1.0001, 3.0]).view(4, 1, 1, 1)
    assert to_uint8(outside).flatten().tolist() == [0, 0, 255, 255]


def test_png_grid_keeps_every_byte_value():
    image = BYTES.view(1, 1, 16, 16)
    data = grid_png(image.repeat(2, 1, 1, 1), nrow=2)
    grid = np.asarray(Image.open(io.BytesIO(data)))
    assert grid.shape == (PAD + 16 + PAD, PAD + 2 * (16 + PAD))
    assert np.array_equal(grid[PAD:PAD + 16, PAD:PAD + 16], image[0, 0].numpy())


def test_tiles_reads_back_what_grid_png_wrote(tmp_path):
    images = torch.stack([BYTES.view(1, 16, 16).roll(i) for i in range(3)])
    path = tmp_path / "grid.png"
    path.write_bytes(grid_png(images, nrow=2))
    back = tiles(path, (16, 16), 3, nrow=2)
    assert len(back) == 3
    for tile, img in zip(back, images):
        assert np.array_equal(tile, img[0].numpy())

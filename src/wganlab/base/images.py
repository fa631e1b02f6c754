"""Pixels: generator output to bytes, image grids as arrays and PNG files (no matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

PAD = 2


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 (N, C, H, W)."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def make_grid(images: torch.Tensor, nrow: int = 8, pad: int = PAD) -> np.ndarray:
    """uint8 (N, C, H, W) -> one (H', W', C) array of tiles separated by `pad` black pixels."""
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = -(-n // ncol)
    grid = np.zeros((pad + nrows * (h + pad), pad + ncol * (w + pad), c), np.uint8)
    for i, img in enumerate(images.numpy()):
        r, col = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = img.transpose(1, 2, 0)
    return grid


def grid_png(images: torch.Tensor, nrow: int = 8, pad: int = PAD) -> bytes:
    """uint8 (N, C, H, W) as one PNG grid, nrow images a row; one image with pad=0 is that
    image alone."""
    grid = make_grid(images, nrow, pad)
    img = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def tiles(png_path: Path, tile_hw: tuple[int, int], count: int, nrow: int = 8) -> list:
    """Read the first `count` tiles back from a grid written by grid_png."""
    grid = np.asarray(Image.open(png_path))
    h, w = tile_hw
    out = []
    for i in range(count):
        r, col = divmod(i, nrow)
        y, x = PAD + r * (h + PAD), PAD + col * (w + PAD)
        if y + h <= grid.shape[0] and x + w <= grid.shape[1]:
            out.append(grid[y:y + h, x:x + w])
    return out

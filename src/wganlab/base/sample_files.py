"""`generate --out-dir`: one PNG per sample, never over a file generate did not write.

Each PNG carries a text chunk saying generate wrote it. Before anything is written, every
name about to be used (00000.png, 00001.png, ...) is checked: a free name, or a PNG with that
mark, is fine; anything else (a user's photo called 00000.png, a link, a folder) refuses the
whole command, naming the file, and nothing is written. So running generate again into its
own folder replaces its own earlier samples, and a folder of photos is never touched.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch
from PIL import Image, PngImagePlugin

from .files import WriteRefused, atomic_write, refuse_system_folder
from .images import make_grid

MARK = ("Software", "wganlab generate")  # the PNG text chunk that says we wrote the file


def sample_png(image: torch.Tensor) -> bytes:
    """One uint8 (C, H, W) sample as a PNG at its own size, marked as generate's."""
    array = make_grid(image[None], nrow=1, pad=0)
    info = PngImagePlugin.PngInfo()
    info.add_text(*MARK)
    buf = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(
        buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def written_by_generate(path: Path) -> bool:
    """Whether `path` is a regular PNG file (not a link) that generate wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with Image.open(path) as image:  # reads the header and text chunks only
            return image.format == "PNG" and image.text.get(MARK[0]) == MARK[1]
    except Exception:  # noqa: BLE001 - any file Pillow cannot read is not one of ours
        return False


def write_sample_files(images: torch.Tensor, folder: str | Path) -> int:
    """Write uint8 (N, C, H, W) samples as FOLDER/00000.png, ...; returns how many."""
    folder = Path(os.path.expanduser(str(folder)))
    refuse_system_folder(folder, "--out-dir")
    if folder.exists() and not folder.is_dir():
        raise WriteRefused(f"--out-dir: {folder} exists and is not a folder")
    paths = [folder / f"{i:05d}.png" for i in range(len(images))]
    theirs = [p.name for p in paths if (p.exists() or p.is_symlink())
              and not written_by_generate(p)]
    if theirs:
        more = f" and {len(theirs) - 1} more" if len(theirs) > 1 else ""
        raise WriteRefused(f"--out-dir: {folder / theirs[0]}{more} would be replaced, and "
                           "generate did not write it; nothing was written: give a new or "
                           "empty folder")
    for path, image in zip(paths, images):
        data = sample_png(image)
        atomic_write(path, lambda f, d=data: f.write(d))
    return len(paths)

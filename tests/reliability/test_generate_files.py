"""Defect 11: `generate --out-dir` writes each sample at its own size, without the grid's
border: the same pixels as the sample's tile in the grid, and nothing else."""

import numpy as np
from PIL import Image

from wganlab.base.images import tiles


def test_each_file_is_the_sample_alone(reference, tmp_path, cli):
    run, folder, grid = reference("wgan-gp"), tmp_path / "samples", tmp_path / "grid.png"
    assert cli("generate", run, "--n", 12, "--seed", 4, "--out-dir", folder)[0] == 0
    assert cli("generate", run, "--n", 12, "--seed", 4, "--out", grid)[0] == 0
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(12)]
    expected = tiles(grid, (8, 8), 12)
    for path, tile in zip(files, expected):
        image = Image.open(path)
        assert image.size == (8, 8) and image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), tile)
    assert len({np.asarray(Image.open(f)).tobytes() for f in files}) == 12  # not one image

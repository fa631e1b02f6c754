"""Defect 8: a --data-dir holding part of a data set is an error naming the folder and the
missing files, never a silent switch to another copy (the cache, or Debian's Fashion-MNIST).
"""

import numpy as np
import pytest

from wganlab.data import load_dataset, sources, write_idx
from wganlab.errors import DataError

from .runs import TINY


def write_split(folder, split: str, fill: int, n: int = 4, which=(0, 1)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    images_name, labels_name = sources.IDX_SPLITS[split]
    if 0 in which:
        write_idx(folder / images_name, np.full((n, 28, 28), fill, np.uint8), compress=True)
    if 1 in which:
        write_idx(folder / labels_name, np.arange(n, dtype=np.uint8) % 10, compress=True)


@pytest.fixture
def system(monkeypatch, tmp_path):
    """A complete Fashion-MNIST in a 'system' folder (pixels 99) and a private empty cache."""
    monkeypatch.setenv("WGANLAB_DATA", str(tmp_path / "cache"))
    folder = tmp_path / "system"
    write_split(folder, "train", 99)
    write_split(folder, "test", 99)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": (folder,)})
    return folder


def test_missing_labels_file_is_named(system, tmp_path):
    mine = tmp_path / "mine"
    write_split(mine, "train", 7, which=(0,))  # the images, not the labels
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", "train", data_dir=mine, download=False)
    message = str(e.value)
    assert f"--data-dir {mine}" in message and "train-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz" not in message.split("missing")[1].split("(")[0]
    assert "\n" not in message


def test_a_folder_with_train_but_not_test(system, tmp_path):
    """Evaluation reads the test split: it must not come silently from another copy."""
    mine = tmp_path / "mine"
    write_split(mine, "train", 7)
    assert int(load_dataset("fashion-mnist", "train", data_dir=mine).images.max()) == 7
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", "test", data_dir=mine, download=False)


def test_the_subfolder_named_after_the_data_set_counts_too(system, tmp_path):
    mine = tmp_path / "data"
    write_split(mine / "fashion-mnist", "train", 7, which=(1,))
    with pytest.raises(DataError, match=f"{mine / 'fashion-mnist'}: .*train-images"):
        load_dataset("fashion-mnist", "train", data_dir=mine, download=False)


def test_a_folder_without_any_of_its_files_still_searches_on(system, tmp_path):
    """The documented order: --data-dir, then the cache, then system folders."""
    other = tmp_path / "pictures"
    other.mkdir()
    (other / "cat.png").write_bytes(b"not ours")
    assert int(load_dataset("fashion-mnist", "train", data_dir=other).images.max()) == 99


def test_train_command_names_the_missing_files(system, tmp_path, cli):
    mine = tmp_path / "mine"
    write_split(mine, "train", 7, which=(0,))
    args = [a for a in TINY if a not in ("synthetic", "--dataset")]
    code, _, err = cli("train", *args, "--dataset", "fashion-mnist", "--data-dir", mine,
                       "--out", tmp_path / "run", "--steps", 1)
    assert code == DataError.exit_code, err
    assert len(err.strip().splitlines()) == 1 and "train-labels-idx1-ubyte.gz" in err, err

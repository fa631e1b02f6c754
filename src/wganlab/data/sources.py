"""Where each data set's files come from: the user's folder, the cache, the system, the web.

Search order: data_dir (and data_dir/NAME), the user cache ($WGANLAB_DATA or ~/.cache/wganlab,
one subfolder per data set), system folders (Debian's dataset-fashion-mnist), then a download
into the cache. Local files are never checksummed: Debian recompresses Fashion-MNIST, so its
.gz bytes differ from upstream's while the data are the same. Downloads always are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .download import fetch_from_mirrors, mirror_bases


@dataclass(frozen=True)
class Remote:
    """Where a data set can be downloaded from, and which files each split needs."""

    mirrors: tuple[str, ...]  # base URLs, tried in order
    files: dict[str, tuple[str, ...]]  # split -> the file names it needs


def _idx_files(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}-ubyte.gz"


IDX_SPLITS = {
    split: (_idx_files(prefix, "images-idx3"), _idx_files(prefix, "labels-idx1"))
    for split, prefix in (("train", "train"), ("test", "t10k"))
}
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"

REMOTES = {
    # The mirrors torchvision lists (yann.lecun.com now often refuses), plus TensorFlow's.
    "mnist": Remote(("https://ossci-datasets.s3.amazonaws.com/mnist/",
                     "https://storage.googleapis.com/cvdf-datasets/mnist/",
                     "http://yann.lecun.com/exdb/mnist/"), IDX_SPLITS),
    "fashion-mnist": Remote(("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                            IDX_SPLITS),
    "cifar10": Remote(("https://www.cs.toronto.edu/~kriz/",),
                      {"train": (CIFAR_ARCHIVE,), "test": (CIFAR_ARCHIVE,)}),
}

# SHA-256 of the files as the official mirrors serve them (tests monkeypatch these).
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz":
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz":
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz":
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz":
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz":
            "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz":
            "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz":
            "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz":
            "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
    "cifar10": {  # the binary version; its published MD5 is c32a1d4ab5d03f1284b67883e8d87530
        CIFAR_ARCHIVE: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    },
}

# File names that belong to a data set, whichever split: a --data-dir holding any of them is
# meant to be the data set's folder.
_IDX_FILE = re.compile(r"^(train|t10k)-(images-idx3|labels-idx1)-ubyte(\.gz)?$")
OWN_FILES = {
    "mnist": _IDX_FILE, "fashion-mnist": _IDX_FILE,
    "cifar10": re.compile(r"^(cifar-10-binary\.tar\.gz|cifar-10-batches-bin|"
                          r"data_batch_[1-5]\.bin|test_batch\.bin)$"),
}

# Folders a system package fills, and the command that installs it (Debian).
SYSTEM_DIRS = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
SYSTEM_PACKAGES = {"fashion-mnist": "apt install dataset-fashion-mnist"}

# finder(folder, file names) -> the paths to read from that folder, or None if incomplete.
Finder = Callable[[Path, tuple[str, ...]], "list[Path] | None"]


def cache_root() -> Path:
    """$WGANLAB_DATA, else ~/.cache/wganlab: where downloads and trained evaluators go."""
    env = os.environ.get("WGANLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "wganlab"


def find_plain_or_unzipped(folder: Path, names: tuple[str, ...]) -> list[Path] | None:
    """Each name as given or with .gz removed (people often gunzip the IDX files)."""
    found = []
    for name in names:
        options = [folder / name] + ([folder / name[:-3]] if name.endswith(".gz") else [])
        hit = next((p for p in options if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found


def local_dirs(name: str, data_dir) -> list[tuple[str, Path]]:
    """(label, folder) pairs in search order, for both the search and the error message."""
    dirs = []
    if data_dir is not None:
        dirs += [("data_dir", Path(data_dir)), ("data_dir", Path(data_dir) / name)]
    dirs.append(("cache", cache_root() / name))
    dirs += [("system", d) for d in SYSTEM_DIRS.get(name, ())]
    return dirs


def files_of(name: str, folder: Path) -> list[str]:
    """The names in folder that belong to data set `name` (any split, zipped or not)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if OWN_FILES[name].match(p.name))


def _refuse_partial(name: str, split: str, folders: list[Path], wanted) -> None:
    """A --data-dir holding some of a data set's files must hold the split asked for: never
    fall back silently to another copy (the cache, a system folder) for the rest."""
    for folder in folders:
        present = files_of(name, folder)
        if present:
            missing = [w for w in wanted if w not in present and w.removesuffix(".gz")
                       not in present]
            raise DataError(f"--data-dir {folder}: incomplete {name} folder for the {split} "
                            f"split: missing {', '.join(missing or wanted)} (found "
                            f"{', '.join(present)}); add the missing files, or point "
                            "--data-dir at a folder that holds them all")


def _how_to_supply(name: str) -> str:
    files = ", ".join(sorted({f for fs in REMOTES[name].files.values() for f in fs}))
    hints = [f"put {files} in a folder and pass --data-dir FOLDER",
             f"or in $WGANLAB_DATA/{name} (now {cache_root() / name})"]
    if name in SYSTEM_PACKAGES:
        hints.append(f"or run `{SYSTEM_PACKAGES[name]}`")
    return "; ".join(hints)


def locate(name: str, split: str, data_dir=None, download: bool = True,
           finder: Finder = find_plain_or_unzipped) -> tuple[list[Path], str]:
    """The files for (name, split) and where they came from; DataError if nothing worked."""
    remote = REMOTES[name]
    wanted = remote.files[split]
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir}: no such folder")
    looked, mine = [], []
    for label, folder in local_dirs(name, data_dir):
        found = finder(folder, wanted) if folder.is_dir() else None
        if found is not None:
            return found, str(folder)
        if label == "data_dir":
            mine.append(folder)
        elif mine:  # the user's folders had no complete split: part of one is an error
            _refuse_partial(name, split, mine, wanted)
            mine = []
        looked.append(f"{label} {folder}")

    cache = cache_root() / name
    if not download:
        failure = "download disabled"
    else:
        try:
            urls = []
            for filename in wanted:
                dest = cache / filename
                if not dest.is_file():
                    bases = mirror_bases(remote.mirrors)
                    urls.append(fetch_from_mirrors(bases, filename, dest,
                                                   SHA256.get(name, {}).get(filename)))
            found = finder(cache, wanted)
            if found is not None:
                return found, ", ".join(urls) or str(cache)
            failure = f"downloaded files not readable in {cache}"
        except DataError as e:
            failure = f"download failed: {e}"
        except OSError as e:  # e.g. the cache folder cannot be created
            failure = f"download failed: cannot write {cache}: {e}"
    raise DataError(f"{name} {split}: files not found. Looked in: {'; '.join(looked)}. "
                    f"{failure}. To supply them: {_how_to_supply(name)}")

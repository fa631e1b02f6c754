"""Downloads against a loopback HTTP server, the search order, and the all-failed message."""

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from wganlab.data import load_dataset, sources, write_idx
from wganlab.data.download import fetch
from wganlab.errors import DataError

TRAIN_FILES = sources.IDX_SPLITS["train"]


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private cache, no mirror override, no system folders: nothing outside tmp_path."""
    monkeypatch.setenv("WGANLAB_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("WGANLAB_MIRROR", raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {})


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/served on 127.0.0.1 at a free port; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def make_split(folder: Path, n: int, fill: int, compress: bool = True) -> dict[str, str]:
    """Write a train split of n images all equal to fill; return file name -> SHA-256."""
    folder.mkdir(parents=True, exist_ok=True)
    images = np.full((n, 28, 28), fill, np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    names = TRAIN_FILES if compress else tuple(f[:-3] for f in TRAIN_FILES)
    write_idx(folder / names[0], images, compress=compress)
    write_idx(folder / names[1], labels, compress=compress)
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in names}


def test_download_with_correct_hashes(server, monkeypatch, tmp_path):
    served, url = server
    hashes = make_split(served, 3, 7)
    monkeypatch.setenv("WGANLAB_MIRROR", url)
    monkeypatch.setitem(sources.SHA256, "mnist", hashes)
    data = load_dataset("mnist", "train")
    assert data.images.shape == (3, 1, 28, 28) and int(data.images[0, 0, 0, 0]) == 7
    assert data.labels.tolist() == [0, 1, 2]
    assert url in data.source
    cached = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(TRAIN_FILES)  # no temp files
    # A second load reads the cache, even with the server's files gone.
    for f in served.iterdir():
        f.unlink()
    assert load_dataset("mnist", "train").source == str(cached)


def test_wrong_hash_leaves_nothing_under_final_name(server, monkeypatch, tmp_path):
    served, url = server
    hashes = make_split(served, 3, 7)
    hashes[TRAIN_FILES[0]] = "0" * 64
    monkeypatch.setenv("WGANLAB_MIRROR", url)
    monkeypatch.setitem(sources.SHA256, "mnist", hashes)
    with pytest.raises(DataError, match="SHA-256 mismatch") as info:
        load_dataset("mnist", "train")
    assert TRAIN_FILES[0] in str(info.value)
    cached = tmp_path / "cache" / "mnist"
    assert not (cached / TRAIN_FILES[0]).exists()
    assert not [p for p in cached.iterdir() if p.name.endswith(".part")]


def test_missing_file_on_server_is_reported(server, monkeypatch):
    served, url = server
    hashes = make_split(served, 3, 7)
    (served / TRAIN_FILES[1]).unlink()
    monkeypatch.setenv("WGANLAB_MIRROR", url)
    monkeypatch.setitem(sources.SHA256, "mnist", hashes)
    with pytest.raises(DataError, match="404"):
        load_dataset("mnist", "train")


def test_unknown_hash_refuses_download(server, monkeypatch):
    served, url = server
    make_split(served, 3, 7)
    monkeypatch.setenv("WGANLAB_MIRROR", url)
    monkeypatch.setitem(sources.SHA256, "mnist", {})
    with pytest.raises(DataError, match="refusing to download it unverified"):
        load_dataset("mnist", "train")


def _dead_url() -> str:
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _Quiet)
    port = httpd.server_address[1]
    httpd.server_close()  # nothing listens there any more: connection refused
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_server_down_gives_one_clear_message(monkeypatch, tmp_path, name):
    dead = _dead_url()
    monkeypatch.setenv("WGANLAB_MIRROR", dead)
    with pytest.raises(DataError) as info:
        load_dataset(name, "train", data_dir=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg  # the CLI prints it as one line
    assert f"data_dir {tmp_path}" in msg and str(tmp_path / "cache" / name) in msg
    assert dead in msg and "download failed" in msg
    assert "--data-dir" in msg and "$WGANLAB_DATA" in msg
    assert ("apt install dataset-fashion-mnist" in msg) == (name == "fashion-mnist")


def test_download_disabled_says_so(tmp_path):
    with pytest.raises(DataError, match="download disabled"):
        load_dataset("mnist", "train", download=False)


def test_missing_data_dir_is_an_error_not_a_silent_download(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_dataset("mnist", "train", data_dir=tmp_path / "typo")


def test_source_order_data_dir_then_cache_then_download(server, monkeypatch, tmp_path):
    served, url = server
    monkeypatch.setitem(sources.SHA256, "mnist", make_split(served, 2, 30))
    monkeypatch.setenv("WGANLAB_MIRROR", url)
    make_split(tmp_path / "cache" / "mnist", 2, 20)
    make_split(tmp_path / "mine", 2, 10, compress=False)  # unzipped files are found too

    def first_pixel(**kw):
        return int(load_dataset("mnist", "train", **kw).images[0, 0, 0, 0])

    assert first_pixel(data_dir=tmp_path / "mine") == 10
    assert first_pixel() == 20
    for f in (tmp_path / "cache" / "mnist").iterdir():
        f.unlink()
    assert first_pixel() == 30


def test_data_dir_subfolder_named_after_data_set(tmp_path):
    make_split(tmp_path / "data" / "mnist", 2, 40)
    data = load_dataset("mnist", "train", data_dir=tmp_path / "data", download=False)
    assert int(data.images[0, 0, 0, 0]) == 40 and data.source == str(tmp_path / "data" / "mnist")


def test_system_folder_used_for_fashion_mnist(monkeypatch, tmp_path):
    make_split(tmp_path / "system", 2, 50)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "system",)})
    data = load_dataset("fashion-mnist", "train", download=False)
    assert int(data.images[0, 0, 0, 0]) == 50 and data.source == str(tmp_path / "system")


def test_cifar10_download_and_read_from_cache(server, monkeypatch):
    served, url = server
    record = bytes([4]) + bytes(range(256)) * 12  # label 4, 3072 pixel bytes
    with tarfile.open(served / sources.CIFAR_ARCHIVE, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.size = len(record)
        tar.addfile(info, io.BytesIO(record))
    digest = hashlib.sha256((served / sources.CIFAR_ARCHIVE).read_bytes()).hexdigest()
    monkeypatch.setitem(sources.SHA256, "cifar10", {sources.CIFAR_ARCHIVE: digest})
    monkeypatch.setenv("WGANLAB_MIRROR", url)
    data = load_dataset("cifar10", "test")
    assert data.labels.tolist() == [4] and data.images.shape == (1, 3, 32, 32)
    assert data.images[0, 0, 0, :3].tolist() == [0, 1, 2]
    assert data.source == url + sources.CIFAR_ARCHIVE


def test_fetch_refuses_other_schemes(tmp_path):
    with pytest.raises(DataError, match="only http"):
        fetch("ftp://example.invalid/x", tmp_path / "x", "0" * 64)
    assert list(tmp_path.iterdir()) == []

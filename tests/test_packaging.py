"""Packaging basics: a LICENSE, one version, and a wheel that holds what the package needs
(built offline from a copy of the source, then checked with twine)."""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import wganlab

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
REPO = Path(__file__).resolve().parent.parent


def test_license_is_mit_and_named_in_pyproject():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "2026 wganlab contributors" in text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]


def test_the_version_is_written_once():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and pyproject["project"]["dynamic"] == ["version"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "wganlab.version.__version__"
    literal = re.compile(r"""__version__\s*=\s*["']""")
    written = [p.name for p in (REPO / "src" / "wganlab").rglob("*.py")
               if literal.search(p.read_text())]
    assert written == ["version.py"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", wganlab.__version__)
    assert f"## [{wganlab.__version__}]" in (REPO / "CHANGELOG.md").read_text()


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """sdist and wheel, built without network (--no-isolation) from a copy of the tree."""
    pytest.importorskip("build")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                           str(src)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out


def test_the_wheel_holds_weights_types_and_license(dist):
    wheel = next(dist.glob("*.whl"))
    assert wheel.name == f"wganlab-{wganlab.__version__}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("wganlab/weights/fashion-mnist-evaluator.safetensors",
                   "wganlab/weights/fashion-mnist-evaluator.json", "wganlab/py.typed",
                   f"wganlab-{wganlab.__version__}.dist-info/licenses/LICENSE",
                   "wganlab/training/loop.py", "wganlab/cli/main.py"):
        assert needed in names, needed
    metadata = zipfile.ZipFile(wheel).read(
        f"wganlab-{wganlab.__version__}.dist-info/METADATA").decode()
    assert f"Version: {wganlab.__version__}" in metadata and "License-Expression: MIT" in metadata
    assert "Provides-Extra: hub" in metadata


def test_twine_accepts_both_distributions(dist):
    pytest.importorskip("twine")
    files = [str(p) for p in sorted(dist.iterdir())]
    assert len(files) == 2  # the sdist and the wheel
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *files],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

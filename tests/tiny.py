"""The tiny run the tests share: 8x8 synthetic images and networks of a few channels, so a
generator step takes milliseconds. Tests that need a finished run take the `tiny_run`
fixture (conftest.py), which trains each distinct run once per session."""

from __future__ import annotations

import contextlib
import importlib
import shutil
from pathlib import Path

import pytest

TINY = ["--dataset", "synthetic", "--batch-size", "16", "--g-filters", "8", "--c-filters", "4",
        "--image-shape", "1,8,8", "--z-dim", "8", "--no-progress"]


def train_argv(preset: str, out: Path, steps: int, *extra) -> list[str]:
    """`wganlab train` arguments of a tiny run of `preset` for `steps` generator steps."""
    return ["train", "--preset", preset, *TINY, "--out", str(out), "--steps", str(steps),
            *map(str, extra)]


def copy_run(run: Path, where: Path) -> Path:
    """A private copy of a shared run, for a test that changes files in it."""
    return Path(shutil.copytree(run, where / run.name))


@contextlib.contextmanager
def no_pictures():
    """Training without its figures and report, which take longer than a tiny run's steps:
    for tests about something else (tests/test_report.py and test_cli.py draw them)."""
    loop = importlib.import_module("wganlab.training.loop")  # the package exports train()
    outputs = importlib.import_module("wganlab.training.outputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "redraw", lambda *a, **k: [])
        patch.setattr(outputs, "redraw", lambda *a, **k: [])
        patch.setattr(loop, "write_report", lambda *a, **k: None)
        yield

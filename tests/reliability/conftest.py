"""Fixtures for the reliability tests: the CLI in this process, and straight reference runs."""

from __future__ import annotations

import pytest
import torch

from tiny import no_pictures
from wganlab import cli as cli_module

from .runs import PER_EPOCH, train_argv

# Straight runs the resumed ones are compared with: two epochs of wgan-gp; one epoch and a
# bit of the seed preset (its epochs are 64 steps long).
REFERENCE_STEPS = {"wgan-gp": 2 * PER_EPOCH["wgan-gp"], "seed": PER_EPOCH["seed"] + 6}


@pytest.fixture(scope="session")
def single_thread():
    """One intra-op thread, as the subprocesses get (OMP_NUM_THREADS=1), so that results
    computed here and in a child process are comparable bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Cli:
    """wganlab's main() in this process, without figures (tiny.no_pictures); returns (exit
    code, stdout, stderr)."""

    def __init__(self, capsys):
        self.capsys = capsys

    def __call__(self, *argv):
        self.capsys.readouterr()
        try:
            with no_pictures():
                code = cli_module.main([str(a) for a in argv])
        except SystemExit as e:  # argparse's own errors
            code = e.code
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def cli(single_thread, capsys) -> Cli:
    return Cli(capsys)


@pytest.fixture(scope="session")
def reference(single_thread, tmp_path_factory):
    """reference(preset) -> the run directory of a straight, uninterrupted run (made once)."""
    made = {}

    def get(preset: str):
        if preset not in made:
            out = tmp_path_factory.mktemp(f"reference-{preset}") / "run"
            with no_pictures():
                code = cli_module.main(train_argv(preset, out, REFERENCE_STEPS[preset]))
            assert code == 0
            made[preset] = out
        return made[preset]

    return get

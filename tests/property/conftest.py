"""A tiny run directory made without training (a checkpoint of freshly built networks), and
the CLI run in this process with its output captured."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.cli import main
from wganlab.config import apply_overrides, get_preset, validate
from wganlab.models import build_models

TINY_MODEL = dict(g_filters=8, c_filters=4, n_blocks=1, image_shape=(1, 8, 8), z_dim=4)


def make_run(path, weights=None):
    """A run directory whose newest checkpoint holds a tiny generator (with `weights`)."""
    cfg = validate(apply_overrides(get_preset("wgan-gp"), {"model": TINY_MODEL, "run": {
        "dataset": "synthetic", "out": str(path)}}))
    torch.manual_seed(0)
    generator, critic = build_models(cfg.model, cfg.model.image_shape)
    state = {"generator": weights or generator.state_dict(), "critic": critic.state_dict(),
             "step": 1, "config": cfg.to_dict()}
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(cfg.to_json())
    target = checkpoint.checkpoint_path(path, 1)
    target.parent.mkdir(exist_ok=True)
    # torch.save itself: checkpoint.save refuses to write NaN, but files come from elsewhere.
    torch.save(state, target)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("property") / "run")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `wganlab ARGV`; argparse's own exits included."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def assert_clean_error(code, err, *names):
    """A user error: non-zero exit, one line on stderr naming one of `names`, no traceback."""
    lines = err.strip().splitlines()
    assert code not in (0, None) and "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, err
    assert any(n in lines[0] for n in names), lines[0]

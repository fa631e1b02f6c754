"""A run with a generator EMA, stopped and resumed, equals the run that never stopped, bit for
bit, EMA included; the EMA is what its samples show."""

import pytest
import torch

from wganlab.base import checkpoint
from wganlab.base.images import to_uint8
from wganlab.generate import averaged_generator, load_generator

from .runs import PER_EPOCH, stop_and_resume, train_argv

EMA = ("--ema-decay", "0.9")
END = 2 * PER_EPOCH["wgan-gp"]


@pytest.mark.slow
def test_resume_with_ema_equals_straight_run(cli, tmp_path):
    _, want = stop_and_resume(cli, tmp_path, END, *EMA)  # the "ema" entry with the rest
    # Not vacuous: the EMA is there, has counted every step and differs from the raw weights.
    assert int(want["ema"]["averaged"]["n_averaged"]) == END
    raw, ema = want["generator"], averaged_generator(want)
    assert raw.keys() == ema.keys()
    assert not all(torch.equal(raw[k], ema[k]) for k in raw)


def test_sample_grids_and_generate_use_the_ema(cli, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_argv("wgan-gp", run, PER_EPOCH["wgan-gp"], *EMA))[0] == 0
    state = checkpoint.load(checkpoint.list_checkpoints(run)[0])
    averaged = load_generator(run)
    info = averaged.provenance
    raw = load_generator(run, weights="raw")
    assert info["weights"] == "ema"
    with torch.no_grad():
        from_ema = to_uint8(averaged(state["fixed_z"]))
        from_raw = to_uint8(raw(state["fixed_z"]))
    assert not torch.equal(from_ema, from_raw)
    # The epoch's grid is the fixed z through the EMA generator.
    from wganlab.base.images import grid_png

    assert (run / "samples" / "epoch-001.png").read_bytes() == grid_png(from_ema)

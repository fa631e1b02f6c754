"""A run with held-out images (--max-images) reads the overfitting heuristic at each logged
row, and with --augment-p auto every --augment-interval steps, from the fixed-z images that
the row's diversity is read from: one generator pass a step at most (a reading is a third of
a step's time on a CPU)."""

import pytest

from wganlab.metrics import health

from .runs import loss_rows, train_argv

AUTO = ("--augment", "translation", "--augment-p", "auto", "--augment-interval", "3")


@pytest.mark.parametrize("flags,passes", [((), 3), (AUTO, 4)])  # auto: steps 2, 3, 4, 6
def test_each_step_reads_the_fixed_z_images_once(flags, passes, cli, tmp_path, monkeypatch):
    calls = []
    generate = health.generate_as_trained

    def counted(*args, **kwargs):
        calls.append(1)
        return generate(*args, **kwargs)

    monkeypatch.setattr(health, "generate_as_trained", counted)
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 6, "--max-images", "512",
                                   "--log-every", "2", *flags))
    assert code == 0, err
    logged = [r["step"] for r in loss_rows(run) if "overfit" in r and "diversity" in r]
    assert logged == [2, 4, 6] and len(calls) == passes

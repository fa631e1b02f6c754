"""A plain run with held-out images (--max-images) reads the overfitting heuristic at each
logged row, from the fixed-z images that row's diversity was read from: one generator pass a
row, not two (the reading is a third of a step's time on a CPU)."""

from wganlab.metrics import health

from .runs import loss_rows, train_argv


def test_each_logged_row_reads_the_heuristic_from_one_generator_pass(cli, tmp_path,
                                                                     monkeypatch):
    passes = []
    generate = health.generate_as_trained

    def counted(*args, **kwargs):
        passes.append(1)
        return generate(*args, **kwargs)

    monkeypatch.setattr(health, "generate_as_trained", counted)
    run = tmp_path / "run"
    code, _, err = cli(*train_argv("wgan-gp", run, 6, "--max-images", "512",
                                   "--log-every", "2"))
    assert code == 0, err
    logged = [r["step"] for r in loss_rows(run) if "overfit" in r and "diversity" in r]
    assert logged == [2, 4, 6] and len(passes) == 3

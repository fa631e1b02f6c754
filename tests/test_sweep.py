"""The sweep: presets x seeds at equal wall time and equal steps, evaluated and tabled."""

import json
from pathlib import Path

import numpy as np
import pytest

from wganlab.bench import sweep as S
from wganlab.bench.sweep_table import format_table, mean_std, summarise
from wganlab.cli import main
from wganlab.cli import measure as M
from wganlab.errors import ConfigError

TINY = ["--dataset", "synthetic", "--batch-size", "16", "--g-filters", "16", "--c-filters", "8",
        "--no-progress"]


def record(preset, seed, steps, fid, kid=0.1, modes=8):
    return {"preset": preset, "seed": seed, "steps": steps, "minutes": 1.0, "fid": fid,
            "kid_mean": kid, "modes_covered": modes}


def test_mean_std_is_the_sample_statistic():
    assert mean_std([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0, "n": 3}
    assert mean_std([4.0, None, float("nan")]) == {"mean": 4.0, "std": None, "n": 1}
    assert mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_summary_and_table_group_by_preset_and_condition():
    equal_time = [record("a", 1, 100, 10.0), record("a", 2, 110, 14.0),
                  record("b", 1, 40, 30.0), record("b", 2, 44, 36.0)]
    equal_steps = [record("a", 1, 40, 20.0), record("a", 2, 40, 22.0)] + equal_time[2:]
    summary = summarise(equal_time, equal_steps, ["a", "b"])
    assert summary["equal_time"]["a"]["fid"]["mean"] == 12.0
    assert summary["equal_time"]["a"]["fid"]["std"] == pytest.approx(2 ** 0.5 * 2)
    assert summary["equal_steps"]["a"]["steps"] == {"mean": 40.0, "std": 0.0, "n": 2}
    table = format_table(summary, 5, 40)
    lines = table.splitlines()
    assert lines[0].startswith("| preset | condition | seeds | steps | minutes | FID | KID")
    assert "| a | equal time (5 min) | 2 | 105 ± 7 | 1.00 ± 0.00 | 12.00 ± 2.83 |" in table
    assert "| a | equal steps (40) | 2 | 40 ± 0 | 1.00 ± 0.00 | 21.00 ± 1.41 |" in table
    assert [line.split(" | ")[0] for line in lines[2:6]] == ["| a", "| a", "| b", "| b"]


def test_run_config_fixes_seed_length_and_place(tmp_path):
    sweep = S.Sweep(["seed"], [1, 2], 0.5, tmp_path, {"run": {"dataset": "synthetic"},
                                                     "model": {"g_filters": 16}})
    timed = S.run_config(sweep, "seed", 2, None)
    assert (timed.train.seed, timed.train.minutes, timed.train.steps, timed.train.epochs) == \
        (2, 0.5, None, None)  # the seed preset's 100 epochs must not cut the run short
    assert timed.run.out == str(tmp_path / "seed" / "seed-2")
    assert timed.model.g_filters == 16 and timed.run.dataset == "synthetic"
    stepped = S.run_config(sweep, "seed", 2, 37)
    assert (stepped.train.minutes, stepped.train.steps) == (None, 37)
    assert stepped.run.out == str(tmp_path / "seed" / "seed-2-steps-37")


def test_command_rejects_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the checkout if a check fails
    assert main(["sweep", "--presets", "wgan-gp,nope", "--out", str(tmp_path)]) == 2
    assert "--presets: unknown preset 'nope'" in capsys.readouterr().err
    assert main(["sweep", "--seeds", "0", "--out", str(tmp_path)]) == 2
    assert "--seeds: must be in [1, 1,000]; got 0" in capsys.readouterr().err
    assert main(["sweep", "--minutes", "-1", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):  # the sweep sets each run's seed itself
        main(["sweep", "--seed", "3"])
    assert "unrecognized arguments: --seed 3" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="distinct"):
        M._names("dcgan,dcgan")


def test_an_unfinished_run_is_not_silently_reused(tmp_path):
    sweep = S.Sweep(["dcgan"], [1], 0.01, tmp_path, {"run": {"dataset": "synthetic"}})
    cfg = S.run_config(sweep, "dcgan", 1, None)
    (tmp_path / "dcgan" / "seed-1").mkdir(parents=True)
    (tmp_path / "dcgan" / "seed-1" / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="unfinished run"):
        S.train_and_evaluate(cfg, lambda run: {})


@pytest.fixture
def synthetic_evaluator(tmp_path, monkeypatch):
    """The real evaluator pipeline, with its one-off network trained for a single epoch in a
    private cache."""
    from wganlab.metrics import evaluator_training

    monkeypatch.setenv("WGANLAB_DATA", str(tmp_path / "cache"))
    recipe = {**evaluator_training.RECIPES["synthetic"], "epochs": 1}
    monkeypatch.setitem(evaluator_training.RECIPES, "synthetic", recipe)


@pytest.mark.slow
def test_sweep_end_to_end_on_synthetic_data(tmp_path, synthetic_evaluator, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--presets", "wgan-gp,dcgan", "--seeds", "2", "--minutes", "0.02",
            "--eval-samples", "64", "--out", str(out), "--separate-seeds", *TINY]
    assert main(argv) == 0
    result = json.loads((out / "sweep.json").read_text())
    timed, stepped = result["runs"]["equal_time"], result["runs"]["equal_steps"]
    assert [(r["preset"], r["seed"]) for r in timed] == [
        ("wgan-gp", 1), ("dcgan", 1), ("wgan-gp", 2), ("dcgan", 2)]
    s = result["equal_steps"]
    assert s == min(r["steps"] for r in timed) >= 1
    assert all(r["steps"] == s for r in stepped)
    for r in timed + stepped:
        assert r["fid"] > 0 and r["kid_mean"] is not None and 0 <= r["modes_covered"] <= 10
        assert r["n_fake"] == 64 and r["step"] == r["steps"]  # the evaluated checkpoint
        evaluation = json.loads((Path(r["run"]) / "eval.json").read_text())
        assert evaluation["fid"] == pytest.approx(r["fid"])
        assert "<td>kid_mean</td>" in (Path(r["run"]) / "report.html").read_text()
    # Runs that went past S were trained again to S, in their own directories.
    for before, after in zip(timed, stepped):
        assert (after["run"] == before["run"]) == (before["steps"] == s)
    summary = result["summary"]["equal_time"]["dcgan"]["fid"]
    assert summary["n"] == 2 and summary["std"] is not None
    # Each cell is the mean +- sample std over the seeds' own eval.json, computed here.
    table = (out / "sweep.md").read_text().splitlines()
    for title, records in (("equal time (0.02 min)", timed), (f"equal steps ({s})", stepped)):
        for preset in ("wgan-gp", "dcgan"):
            mine = [r for r in records if r["preset"] == preset]
            fids = [json.loads((Path(r["run"]) / "eval.json").read_text())["fid"] for r in mine]
            steps = [r["steps"] for r in mine]
            row = [line for line in table if line.startswith(f"| {preset} | {title} | 2 |")]
            cells = [c.strip() for c in row[0].strip("|").split("|")]
            assert cells[3] == f"{np.mean(steps):.0f} ± {np.std(steps, ddof=1):.0f}"
            assert cells[5] == f"{np.mean(fids):.2f} ± {np.std(fids, ddof=1):.2f}"
    assert (out / "sweep.png").stat().st_size > 1000
    assert "Wrote" in capsys.readouterr().out

    # Run again: every finished run is reused, nothing is trained.
    mtimes = {p: p.stat().st_mtime for p in out.rglob("metrics.jsonl")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime for p in out.rglob("metrics.jsonl")} == mtimes


class FakeTrain:
    """Stands in for training (the end-to-end test above trains for real): each preset
    reaches a fixed number of steps in the sweep's minutes, or exactly --steps."""

    def __init__(self, reach, exit_code=0):
        self.reach, self.exit_code, self.calls = reach, exit_code, []

    def __call__(self, cfg):
        from wganlab.training.loop import TrainResult

        self.calls.append((cfg.preset, cfg.train.seed, cfg.train.steps, cfg.train.minutes))
        out = Path(cfg.run.out)
        out.mkdir(parents=True)
        (out / "config.json").write_text(cfg.to_json())
        step = cfg.train.steps or self.reach[cfg.preset]
        (out / "metrics.jsonl").write_text(json.dumps({"step": step, "g_loss": 0.0,
                                                       "time": 6.0 * step}) + "\n")
        return TrainResult(out, step, self.exit_code)


def test_runs_that_went_further_are_retrained_to_equal_steps(tmp_path, monkeypatch):
    import wganlab.training.loop

    fake = FakeTrain({"wgan-gp": 4, "dcgan": 10})
    monkeypatch.setattr(wganlab.training.loop, "train", fake)
    sweep = S.Sweep(["wgan-gp", "dcgan"], [1, 2], 0.5, tmp_path, {"run": {"dataset": "mnist"}})

    def evaluate(run):
        return {"fid": 100.0 / len(run.name), "seed": 0}

    assert S.run_sweep(sweep, evaluate) == 0
    assert fake.calls == [("wgan-gp", 1, None, 0.5), ("dcgan", 1, None, 0.5),
                          ("wgan-gp", 2, None, 0.5), ("dcgan", 2, None, 0.5),
                          ("dcgan", 1, 4, None), ("dcgan", 2, 4, None)]
    result = json.loads((tmp_path / "sweep.json").read_text())
    assert result["equal_steps"] == 4
    stepped = {(r["preset"], r["seed"]): r for r in result["runs"]["equal_steps"]}
    assert stepped["dcgan", 2]["run"] == str(tmp_path / "dcgan" / "seed-2-steps-4")
    assert stepped["dcgan", 2]["seed"] == 2 and stepped["dcgan", 2]["eval_seed"] == 0
    assert stepped["wgan-gp", 1]["run"] == str(tmp_path / "wgan-gp" / "seed-1")
    assert result["summary"]["equal_time"]["dcgan"]["minutes"]["mean"] == 1.0  # 10 x 6 s
    assert "| dcgan | equal steps (4) | 2 | 4 ± 0 |" in (tmp_path / "sweep.md").read_text()


def test_a_finished_run_is_reused_only_with_the_same_settings(tmp_path, monkeypatch):
    import wganlab.training.loop

    fake = FakeTrain({"dcgan": 3})
    monkeypatch.setattr(wganlab.training.loop, "train", fake)
    sweep = S.Sweep(["dcgan"], [1], 0.5, tmp_path, {})
    assert S.run_sweep(sweep, lambda run: {"fid": 1.0}) == 0
    assert S.run_sweep(sweep, lambda run: {"fid": 1.0}) == 0
    assert len(fake.calls) == 1
    longer = S.Sweep(["dcgan"], [1], 2.0, tmp_path, {})
    with pytest.raises(ConfigError, match="finished run with other settings"):
        S.run_sweep(longer, lambda run: {"fid": 1.0})


def test_an_interrupted_run_stops_the_sweep_with_its_exit_code(tmp_path, monkeypatch):
    import wganlab.training.loop

    fake = FakeTrain({"dcgan": 3}, exit_code=130)
    monkeypatch.setattr(wganlab.training.loop, "train", fake)
    sweep = S.Sweep(["dcgan"], [1, 2], 0.5, tmp_path, {})
    assert S.run_sweep(sweep, lambda run: {}) == 130
    assert len(fake.calls) == 1 and not (tmp_path / "sweep.json").exists()


@pytest.mark.slow
def test_sweep_trains_a_presets_seeds_as_one_ensemble_where_it_can(tmp_path,
                                                                    synthetic_evaluator):
    out = tmp_path / "sweep"
    # Members batched (vmap) as asked: spectral norm cannot be, so sngan's seeds run apart.
    argv = ["sweep", "--presets", "wgan-gp,sngan", "--seeds", "2", "--minutes", "0.02",
            "--eval-samples", "64", "--out", str(out), "--ensemble-vmap", *TINY]
    assert main(argv) == 0
    result = json.loads((out / "sweep.json").read_text())
    timed = result["runs"]["equal_time"]
    assert [(r["preset"], r["seed"]) for r in timed] == [
        ("wgan-gp", 1), ("wgan-gp", 2), ("sngan", 1), ("sngan", 2)]
    ensemble = [r for r in timed if r["preset"] == "wgan-gp"]
    assert {r["run"] for r in ensemble} == {str(out / "wgan-gp" / "seeds-1-2")}
    assert json.loads((out / "wgan-gp" / "seeds-1-2" / "config.json").read_text()
                      )["train"]["minutes"] == pytest.approx(0.04)  # 2 seeds x 0.02 min
    evaluation = json.loads((out / "wgan-gp" / "seeds-1-2" / "eval.json").read_text())
    assert [r["fid"] for r in ensemble] == [m["fid"] for m in evaluation["members"]]
    assert all(r["run"].endswith(f"seed-{r['seed']}") for r in timed if r["preset"] == "sngan")
    table = (out / "sweep.md").read_text()
    assert "Trained as one ensemble of 2 seeds" in table and ": wgan-gp." in table
    assert "sngan (spectral norm has no torch.vmap rule)" in table
    stepped = result["runs"]["equal_steps"]
    assert all(r["steps"] == result["equal_steps"] for r in stepped)


def test_sweep_trains_every_recipe_as_an_ensemble_unless_told_or_unable(tmp_path):
    """Conditional presets, augmentation and subsets train as ensembles too (their labels,
    draws and subsets are per member); spectral norm under vmap, one seed and
    --separate-seeds do not, and the table says which."""
    def why(preset, separate=False, seeds=(1, 2), **overrides):
        sweep = S.Sweep([preset], list(seeds), 1.0, tmp_path, overrides,
                        ensembles=not separate)
        return S.why_separate(sweep, preset)

    assert why("fast") is None and why("fast-acgan") is None
    assert why("fast", train={"augment": "translation", "xflip": True},
               run={"max_images": 500}) is None
    assert why("sngan") is None  # its members run one after another
    assert why("sngan", speed={"ensemble_vmap": True}) == "spectral norm has no torch.vmap rule"
    assert why("fast", seeds=(1,)) == "one seed"
    assert why("fast", separate=True) == "--separate-seeds"

"""The measurement scripts' arithmetic (benchmarks/side_by_side.py, small_data.py,
reading_cost.py): the means, the per-seed pairing, each target's verdict and a reading's cost,
on records made by hand."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import reading_cost  # noqa: E402
import side_by_side  # noqa: E402
import small_data  # noqa: E402


def record(name, seed, fid, steps=100, **extra):
    return {"name": name, "seed": seed, "fid": fid, "steps": steps, "precision": 0.5,
            "recall": 0.1, "modes_covered": 10, **extra}


def test_summary_means_and_spreads_over_seeds():
    s = side_by_side.summarise([record("a", 1, 100.0, 10), record("a", 2, 200.0, 30),
                                record("b", 1, 50.0, class_accuracy=0.9, class_accuracy_min=0.7)])
    assert s["a"]["fid"] == [150.0, pytest.approx(70.7107, abs=1e-4)]  # sample std: 100/sqrt(2)
    assert s["a"]["steps"] == [20.0, pytest.approx(14.1421, abs=1e-4)]
    assert s["a"]["fids"] == [100.0, 200.0] and s["a"]["seeds"] == [1, 2]
    assert "class_accuracy" not in s["a"] and s["b"]["class_accuracy"] == [0.9, 0.0]
    text = side_by_side.table(s)
    assert "| a | 2 | 20 ± 14 | 150.0 ± 70.7 |" in text and "| 0.900 ± 0.000 |" in text
    assert text.splitlines()[2].endswith("| - | - | 10, 30 | 100, 200 |")  # a has no accuracy


def test_paired_changes_compare_each_seed_with_the_base_run_of_that_seed_and_step():
    records = [record("plain @ 2,000", 1, 200.0), record("plain @ 2,000", 2, 100.0),
               record("aug @ 2,000", 1, 150.0), record("aug @ 2,000", 2, 120.0),
               record("aug @ 4,000", 1, 90.0),  # no plain run at 4,000: no pair
               record("aug", 3, 50.0)]
    pairs = side_by_side.paired(records, "plain")
    assert pairs == {"aug @ 2,000": [(1, pytest.approx(-0.25)), (2, pytest.approx(0.2))]}
    text = side_by_side.paired_table(pairs, "plain")
    # Mean of -25% and +20%, sample std sqrt(2) * 22.5%.
    assert "| aug @ 2,000 | 1, 2 | -25%, +20% | -2.5% ± 31.8% | 1 of 2 |" in text


def test_records_keep_the_last_of_each_run(tmp_path):
    lines = [record("a", 1, 9.0), record("a", 2, 5.0), record("a", 1, 7.0)]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert [(r["seed"], r["fid"]) for r in side_by_side.read_records(tmp_path)] == [(1, 7.0),
                                                                                   (2, 5.0)]


def test_an_interrupted_comparison_resumes_its_runs(tmp_path, one_thread):
    from tiny import TINY
    from wganlab.cli import main

    run = tmp_path / "plain" / "seed-1"
    first = side_by_side.train_args(run, [], 1, ["--steps", "2"], TINY, None)
    assert "--resume" not in first and main(first) == 0
    again = side_by_side.train_args(run, [], 1, ["--steps", "4"], TINY, None)
    assert main(again) == 0  # a fresh start would be refused: the folder holds this run
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4 and steps.count(1) == 1


def test_small_data_jobs_pass_subset_sizes_but_not_the_whole_split():
    got = small_data.jobs([500, 60_000], [1], {"plain": [], "auto": ["--augment-p", "auto"]})
    assert got == [("500-plain", ["--max-images", "500"], 1),
                   ("500-auto", ["--max-images", "500", "--augment-p", "auto"], 1),
                   ("60000-plain", [], 1), ("60000-auto", ["--augment-p", "auto"], 1)]


def verdicts(fids: dict[str, list[float]]) -> list[str]:
    records = [record(name, seed, f) for name, per_seed in fids.items()
               for seed, f in enumerate(per_seed, 1)]
    return small_data.targets(side_by_side.summarise(records))


def test_small_data_targets_need_every_seed_and_twenty_percent():
    met = verdicts({"500-plain": [100, 100, 100], "500-augment": [79, 70, 80]})
    assert met == ["- 500 images, augment: lower FID than plain in 3 of 3 seeds, mean FID -24% "
                   "(target: every seed, -20% or better): met"]
    one_seed_worse = verdicts({"500-plain": [100, 100, 100], "500-augment": [50, 50, 101]})
    assert "2 of 3" in one_seed_worse[0] and one_seed_worse[0].endswith("not met")
    too_little = verdicts({"2000-plain": [100, 100, 100], "2000-auto": [85, 85, 85]})
    assert "-15%" in too_little[0] and too_little[0].endswith("not met")
    two_seeds = verdicts({"500-plain": [100, 100], "500-augment": [10, 10]})
    assert two_seeds[0].endswith("not met")  # three seeds are the target's evidence


def test_small_data_full_split_and_moonshot():
    lines = verdicts({"60000-plain": [100, 100, 100], "60000-augment": [103, 104, 105],
                      "60000-auto": [110, 106, 105], "2000-augment": [130, 120, 110]})
    assert lines == [
        "- 60,000 images, augment: mean FID +4% against plain (target: no worse than +5%): met",
        "- 60,000 images, auto: mean FID +7% against plain (target: no worse than +5%): not met",
        "- moonshot, 2,000 augmented vs 60,000 plain: +20% (target: within 25%): met"]


def test_ema_table_pairs_each_member_raw_with_its_ema():
    import ema_decision

    rows = [{"step": s, "member": m, "weights": w, "fid": f, "recall": 0.1, "modes_covered": 10}
            for s, m, w, f in [(1000, 0, "raw", 100.0), (1000, 0, "ema", 90.0),
                               (1000, 1, "raw", 80.0), (1000, 1, "ema", 120.0),
                               (2000, 0, "raw", 60.0), (2000, 0, "ema", 50.0),
                               (2000, 1, "raw", 70.0), (2000, 1, "ema", 50.0)]]
    lines = ema_decision.table(rows).splitlines()
    # at step 1,000 EMA is lower for member 0 only
    assert lines[2] == "| 1,000 | 90.0 ± 14.1 | 105.0 ± 21.2 | 1 of 2 | 0.100 | 0.100 |"
    assert lines[3] == "| 2,000 | 65.0 ± 7.1 | 50.0 ± 0.0 | 2 of 2 | 0.100 | 0.100 |"


def test_a_readings_cost_is_the_reading_steps_median_over_the_others(tmp_path):
    # Steps take 0.2 s, 0.3 s when they read (every 3rd); logging (every 10th), an epoch's end
    # (every 25th) and a kept checkpoint (every 40th) take longer and must not count.
    def seconds(step):
        if step % 10 == 0 or step % 25 == 0 or step % 40 == 0:
            return 5.0
        return 0.3 if step % 3 == 0 else 0.2

    def run(name, train):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({"train": train, "run": {
            "log_every": 10, "keep_every": 40, "checkpoint_every": None}}))
        (folder / "run.json").write_text(json.dumps({"steps_per_epoch": 25}))
        elapsed, rows = 0.0, []
        for step in range(1, 301):
            elapsed += seconds(step)
            rows.append(json.dumps({"step": step, "time": elapsed}))
        (folder / "metrics.jsonl").write_text("\n".join(rows) + "\n")
        return reading_cost.summary(folder)

    auto = run("auto", {"augment": "cutout", "augment_p": "auto", "augment_interval": 3})
    assert auto["cost"] == pytest.approx(0.1) and auto["share"] == pytest.approx(0.5)
    assert auto["reading_median"] == pytest.approx(0.3)
    fixed = run("fixed", {"augment": "cutout", "augment_p": 0.3, "augment_interval": 3})
    # Steps 51-300 (the first 50 are start-up) less 25 logged and 5 more epoch ends (75, 125,
    # ...; every 40th is also a 10th): 220, all plain without auto.
    assert "cost" not in fixed and fixed["reading_steps"] == 0 and fixed["plain_steps"] == 220
    assert auto["plain_steps"] + auto["reading_steps"] == 220

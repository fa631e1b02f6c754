"""What an ensemble run leaves: one run directory with every member; generate, export and
evaluate take --member K and give member K's own network; evaluate without --member reports
every member and the mean +- std; the report shows a grid per member and the curves' spread.
"""

import json

import pytest
import torch

from tiny import train_argv
from wganlab.base import checkpoint
from wganlab.cli import main
from wganlab.ensemble import member_state
from wganlab.generate import load_generator, sample
from wganlab.metrics import evaluate

SEEDS = ("4", "9")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "run"
    argv = train_argv("wgan-gp", out, 2, "--ensemble", "2", "--seeds", *SEEDS,
                      "--ema-decay", "0.9")
    assert main(argv) == 0
    return out


@pytest.mark.parametrize("weights", ["ema", "raw"])
def test_member_k_loads_as_its_own_network(run, weights):
    state = checkpoint.load(checkpoint.list_checkpoints(run)[0])
    saved = state["generator"] if weights == "raw" else {
        k[len("module."):]: v for k, v in state["ema"]["averaged"].items()
        if k.startswith("module.")}
    for k, seed in enumerate(SEEDS):
        generator = load_generator(run, weights=weights, member=k)
        mine = member_state(saved, k, 2)
        assert all(torch.equal(v, mine[n]) for n, v in generator.state_dict().items())
        assert generator.config.train.ensemble == 1
        assert generator.config.train.seed == int(seed)
        assert generator.provenance["member"] == k


def test_export_of_a_member_loads_back_as_that_member(run, tmp_path):
    path = tmp_path / "m1.safetensors"
    assert main(["export", str(run), "--member", "1", "--out", str(path)]) == 0
    a, b = load_generator(path), load_generator(run, member=1)
    assert torch.equal(sample(a, 8, seed=3), sample(b, 8, seed=3))


def test_generate_takes_member_and_refuses_out_of_range(run, tmp_path, capsys):
    assert main(["generate", str(run), "--member", "0", "--n", "4",
                 "--out", str(tmp_path / "g.png")]) == 0
    capsys.readouterr()
    for argv in (["--member", "2"], ["--member", "-1"], []):
        assert main(["generate", str(run), *argv, "--out", str(tmp_path / "x.png")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--member" in err, err


def test_evaluate_reports_every_member_and_the_spread(run, stub_evaluator, capsys):
    assert main(["evaluate", str(run), "--n", "40", "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    assert "member 0" in table and "member 1" in table and "+- std" in table
    record = json.loads((run / "eval.json").read_text())
    fids = [m["fid"] for m in record["members"]]
    assert [m["member"] for m in record["members"]] == [0, 1] and fids[0] != fids[1]
    assert record["fid"] == pytest.approx(sum(fids) / 2)
    assert record["fid_std"] == pytest.approx(abs(fids[0] - fids[1]) / 2 ** 0.5)
    one = evaluate.evaluate_run(run, n=40, member=1)
    assert one["fid"] == pytest.approx(fids[1])
    assert (run / "eval.member1.json").is_file()


def test_one_run_directory_holds_every_member_and_the_report_shows_them(run):
    grids = sorted(p.name for p in (run / "samples" / "members").iterdir())
    assert grids[-2:] == ["epoch-001-m0.png", "epoch-001-m1.png"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"d_real.m0", "d_real.m1", "g_loss.m1", "c_grad_norm.m0"} <= set(rows[-1])
    page = (run / "report.html").read_text()
    assert 'id="members"' in page and page.count('alt="member ') == 2
    assert "Spread of the curves" in page


def test_evaluation_during_training_scores_every_member(tmp_path, stub_evaluator):
    out = tmp_path / "run"
    assert main(train_argv("fast", out, 2, "--ensemble", "2", "--eval-every", "2",
                           "--eval-n", "24")) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    row = [r for r in rows if r.get("eval")][-1]
    assert row["fid.m0"] != row["fid.m1"]
    assert row["fid"] == pytest.approx((row["fid.m0"] + row["fid.m1"]) / 2)
    assert row["fid_std"] > 0

import contextlib
import io
import json

import pytest
import torch

from wganlab.bench import measure as bench
from wganlab.bench.baseline import PlainStep
from wganlab.bench.speed import VARIANTS, pick_variants
from wganlab.cli import main
from wganlab.config import apply_overrides, get_preset
from wganlab.losses import gradient_penalty
from wganlab.models import build_models


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory):
    """One `bench --quick --variants all` run (JSON, table and what it printed), shared by the
    tests that read it: a bench run is most of this file's time."""
    out = tmp_path_factory.mktemp("bench")
    report, table, printed = out / "bench.json", out / "RESULTS.md", io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["bench", "--quick", "--threads", "1", "--variants", "all",
                     "--json", str(report), "--markdown", str(table)]) == 0
    return json.loads(report.read_text()), table.read_text(), printed.getvalue()


@pytest.mark.slow
def test_quick_bench_writes_json_and_a_table(quick_bench):
    data, text, printed = quick_bench
    assert {"cpu", "cores", "torch", "torch_threads"} <= set(data["machine"])
    assert data["machine"]["torch_threads"] == 1
    assert [(c["preset"], c["batch_size"]) for c in data["cases"]] == [("seed", 8),
                                                                      ("wgan-gp", 8)]
    for case in data["cases"]:
        base, ours = case["variants"]["baseline"], case["variants"]["ours"]
        assert ours["mode"] == "eager" and "device is cpu" in ours["reason"]
        for v in (base, ours):
            assert v["ms_min"] <= v["ms_per_step"] <= v["ms_max"] and v["timed_steps"] == 2
            per_s = case["real_images_per_step"] / v["ms_per_step"] * 1e3
            assert v["images_per_s"] == pytest.approx(per_s)
            assert v["peak_memory_bytes"] > 0
        # The same recipe: the baseline and the project's step do the same arithmetic.
        assert ours["flops_per_step"] == pytest.approx(base["flops_per_step"], rel=0.01)
        assert ours["speedup"] == pytest.approx(base["ms_per_step"] / ours["ms_per_step"])
        assert len(case["paired_speedups"]) == len(case["paired_cpu_time_ratios"]) == 2
        assert ours["cpu_ms_per_step"] > 0
    assert "| seed | cpu | 8 | baseline | eager |" in text and "1 torch threads" in text
    assert text in printed


def test_the_default_rows_are_ours_beside_the_baseline():
    """Without --variants only "ours" is timed beside the baseline (which always runs)."""
    assert pick_variants(None, False) == ["ours"]
    assert pick_variants(None, True) == ["ours", "ours+bf16"]
    assert pick_variants(["all"], False) == list(VARIANTS)


def test_bench_refuses_a_recipe_the_baseline_does_not_cover(capsys):
    assert main(["bench", "--quick", "--presets", "wgan"]) == 2
    assert "written for the wgan-gp loss" in capsys.readouterr().err


def test_bench_refuses_cuda_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["bench", "--devices", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_flop_counter_counts_a_matmul_and_survives_the_penalty():
    counter = bench.flop_counter()
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    with counter:
        a @ b
    assert counter.get_total_flops() == 2 * 8 * 16 * 4
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    counter = bench.flop_counter()
    with counter:  # FlopCounterMode's own module tracker fails here (torch 2.13)
        gradient_penalty(critic, torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4))
    assert counter.get_total_flops() > 0


def test_cpu_peak_counts_what_a_step_holds_at_once():
    n = 1 << 20  # floats: 4 MiB each

    def step():
        x = torch.ones(n)
        y = x * 2  # both alive: 8 MiB
        del x
        z = y + 1  # y and z alive: 8 MiB
        return float(z[0])

    peak = bench.cpu_step_peak_bytes(step)
    assert 8 * 2**20 <= peak < 9 * 2**20


def test_plain_step_trains_the_recipe():
    cfg = apply_overrides(get_preset("seed"), {"model": dict(g_filters=8, c_filters=4),
                                               "train": dict(batch_size=4)})
    G, C = build_models(cfg.model, (1, 28, 28))
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    before = [p.detach().clone() for p in [*G.parameters(), *C.parameters()]]
    step = PlainStep(cfg, G, C, images, torch.device("cpu"))
    step(torch.randperm(16), 0)
    after = [*G.parameters(), *C.parameters()]
    # every weight moves (a bias in front of BatchNorm gets a zero gradient, so not all do)
    assert all(not torch.equal(a, b) for a, b in zip(before, after) if a.dim() > 1)
    assert C.training  # the penalty's eval-mode pass put the critic back


@pytest.mark.slow
def test_quick_bench_times_every_variant_row_that_applies(quick_bench):
    seed, wgan_gp = quick_bench[0]["cases"]
    cpu_rows = ["baseline", "ours", "ours-unfused", "ours+channels-last"]
    assert list(seed["variants"]) == list(wgan_gp["variants"]) == cpu_rows
    for case in (seed, wgan_gp):
        for name in ("ours-eager", "ours-no-cudnn-benchmark", "ours+bf16"):
            assert case["skipped"][name] == "CUDA only"
        for v in case["variants"].values():
            assert v["vs_ours"] == pytest.approx(case["variants"]["ours"]["ms_per_step"]
                                                 / v["ms_per_step"])
    v = wgan_gp["variants"]
    assert v["ours-unfused"]["flops_per_step"] == v["ours"]["flops_per_step"] > 0


def test_what_the_profiler_prints_itself_stays_out_of_the_table(capfd):
    """kineto writes "USDT: ..." lines straight to file descriptors 1 and 2 when a profile
    starts; the benchmark's output is its table alone, and Python's own output still shows."""
    import os

    from wganlab.bench.measure import quiet_profiler

    print("before")
    with quiet_profiler():
        os.write(1, b"USDT: profiler_start\n")
        os.write(2, b"USDT: profiler_start\n")
    print("after")
    out, err = capfd.readouterr()
    assert out == "before\nafter\n" and "USDT" not in err


def test_bench_refuses_an_unknown_variant(capsys):
    assert main(["bench", "--quick", "--variants", "ours+magic"]) == 2
    assert "--variants: unknown ours+magic" in capsys.readouterr().err


@pytest.mark.slow
def test_profile_lists_the_ops_with_the_most_self_time(tmp_path, capsys):
    report = tmp_path / "profile.json"
    assert main(["bench", "--quick", "--profile", "--presets", "wgan-gp", "--threads", "1",
                 "--profile-top", "5", "--json", str(report)]) == 0
    (p,) = json.loads(report.read_text())["profiles"]
    assert (p["preset"], p["variant"], p["clock"]) == ("wgan-gp", "ours", "cpu")
    times = [op["self_ms_per_step"] for op in p["ops"]]
    assert len(times) == 5 and times == sorted(times, reverse=True)
    assert 0 < sum(times) <= p["self_ms_per_step"] * 1.0001
    assert sum(op["share"] for op in p["ops"]) <= 1.0001
    # 5 critic updates and one generator update: convolutions and their gradients lead
    assert any("conv" in op["name"] for op in p["ops"])
    out = capsys.readouterr().out
    assert "### wgan-gp, cpu, batch 8, ours (eager)" in out and "| `aten::" in out


def test_gpu_check_has_data_for_every_recipe():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import gpu_check

    for recipe in gpu_check.RECIPES:
        cfg, _, _, images = gpu_check.build(recipe, 128, torch.device("cpu"), 8, small=True)
        per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
        assert len(images) >= 128 * per_step * 8, recipe


@pytest.mark.slow  # about a minute on 2 busy cores: three processes' start-up and tiny runs
def test_gpu_session_quick_form_runs_every_default_part(tmp_path):
    """benchmarks/gpu_session.sh --quick: every part of both calls, tiny, on the CPU."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_session.sh"
    done = subprocess.run(["bash", str(script), str(tmp_path), "--quick"], text=True,
                          capture_output=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stdout + done.stderr
    speed = json.loads((tmp_path / "ensemble-speed-cpu.json").read_text())["cases"]
    assert [(c["preset"], c["members"]) for c in speed] == [("fast", 1), ("fast", 2)]
    assert all(c["ms_per_step"] > 0 for c in speed)
    records = [json.loads(line) for line in (tmp_path / "quality.jsonl").read_text().splitlines()]
    quality = records[-1]
    assert quality["ensemble"] == 2 and len(quality["member_fids"]) == 2
    # small_data: four named runs, each an ensemble of 3 on its subset with its flags, and
    # each member's precision, recall and classes covered recorded beside its FID
    small = {r["name"]: r for r in records[:-1]}
    assert list(small) == ["100-plain", "100-augment", "200-plain", "200-auto06"]
    assert small["100-augment"]["flags"] == ["--max-images", "100", "--augment",
                                             "translation,cutout,colour", "--augment-p", "0.3"]
    assert small["200-auto06"]["flags"][-4:] == ["--augment-p", "auto", "--augment-target", "0.6"]
    for r in small.values():
        assert len(r["member_fids"]) == len(r["member_recall"]) == 3, r["name"]
        assert r["steps"] == 2 and r["modes_covered"] is not None
    # augment_check: the run-built recipes, static against eager on the CPU: equal, moving
    check = json.loads((tmp_path / "gpu_check.json").read_text())["compare"]
    assert [c["recipe"] for c in check] == list(gpu_check_recipes())
    for c in check:
        assert "error" not in c, c
        assert all(r["rel_diff"] == 0.0 and r["finite"] and r["moved"] > 0 for r in c["rows"])


def gpu_check_recipes():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import gpu_check

    return gpu_check.RUN_RECIPES

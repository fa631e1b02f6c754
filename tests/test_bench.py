import json

import pytest
import torch

from wganlab.bench import measure as bench
from wganlab.bench.baseline import PlainStep
from wganlab.cli import main
from wganlab.config import apply_overrides, get_preset
from wganlab.losses import gradient_penalty
from wganlab.models import build_models


@pytest.mark.slow
def test_quick_bench_writes_json_and_a_table(tmp_path, capsys):
    report, table = tmp_path / "bench.json", tmp_path / "RESULTS.md"
    assert main(["bench", "--quick", "--threads", "1", "--json", str(report),
                 "--markdown", str(table)]) == 0
    data = json.loads(report.read_text())
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
    text = table.read_text()
    assert "| seed | cpu | 8 | baseline | eager |" in text and "1 torch threads" in text
    assert text in capsys.readouterr().out


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

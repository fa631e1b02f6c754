"""Health rules on synthetic metric streams: each fires on its failure and stays quiet on a
healthy run."""

import copy
import math
import random

import pytest
import torch

from wganlab.metrics import health
from wganlab.metrics.health import HealthMonitor, Stream
from wganlab.runfiles import RunFileWarning

W_BOUND = health.lipschitz_bound((1, 28, 28))


def healthy_run(n=600, seed=0):
    """WGAN-GP as it usually looks: the estimate climbs to a few units and settles, gradient
    norms near 1, noisy losses, diverse samples every 10 steps."""
    rng = random.Random(seed)
    rows = []
    for step in range(1, n + 1):
        w = 4 * (1 - math.exp(-step / 50)) + rng.gauss(0, 0.3)
        g_loss = -1 + rng.gauss(0, 0.5)
        row = {"step": step, "epoch": 1 + step // 100, "time": step * 0.1, "g_loss": g_loss,
               "d_loss": -w + rng.gauss(0, 0.2), "d_real": w / 2, "d_fake": -w / 2,
               "wasserstein": w, "gp": 0.02, "gp_norm_mean": 1 + rng.gauss(0, 0.08),
               "gp_norm_std": 0.2, "gp_norm_near_1": 0.4 + rng.gauss(0, 0.05),
               "c_grad_norm": 5.0, "g_grad_norm": 2.0}
        if step % 10 == 0:
            row["diversity"] = 0.9 + rng.gauss(0, 0.05)
        rows.append(row)
    return rows


def names(flags):
    return sorted(f.name for f in flags)


def test_a_healthy_run_raises_no_flag():
    for seed in range(3):
        assert health.scan(healthy_run(seed=seed), W_BOUND) == []


def test_a_runaway_critic_is_flagged_once_it_passes_the_lipschitz_limit():
    # The tutorial's log: the estimate grows steadily into the thousands.
    rows = healthy_run()
    for r in rows:
        r["wasserstein"] = 0.5 * r["step"] + random.Random(r["step"]).gauss(0, 1)
    flags = health.scan(rows, W_BOUND)
    assert names(flags) == ["critic_runaway"]
    # 0.5 * step passes 56 near step 112; the median of the last 20 rows lags ~10 steps.
    assert 112 <= flags[0].step <= 140
    assert "1-Lipschitz" in flags[0].hint and "--critic-norm layer" in flags[0].hint


def test_the_same_growth_on_larger_images_is_still_within_the_limit():
    rows = healthy_run(n=200)
    for r in rows:
        r["wasserstein"] = 0.5 * r["step"]  # at most 100
    assert health.lipschitz_bound((3, 64, 64)) == pytest.approx(2 * math.sqrt(3 * 64 * 64))
    assert health.scan(rows, health.lipschitz_bound((3, 64, 64))) == []
    assert names(health.scan(rows, W_BOUND)) == ["critic_runaway"]


def test_a_penalty_that_does_not_hold_is_flagged_after_the_warm_up():
    rows = healthy_run(n=300)
    for r in rows:
        r["gp_norm_mean"] = 0.17 + 0.01 * math.sin(r["step"])  # the seed preset's eval-mode GP
        r["gp_norm_near_1"] = 0.0
    flags = health.scan(rows, W_BOUND)
    assert names(flags) == ["penalty_not_holding"]
    assert flags[0].step > health.GP_WARMUP + health.GP_WINDOW - 10
    assert "0.17" in flags[0].hint and "0% of them" in flags[0].hint
    # Far from 1 only during the warm-up: quiet.
    early = healthy_run(n=300)
    for r in early[:health.GP_WARMUP]:
        r["gp_norm_mean"] = 5.0
    assert health.scan(early, W_BOUND) == []


def test_a_stalled_run_is_flagged():
    rows = healthy_run(n=300)
    for r in rows[150:]:
        r["g_loss"], r["d_loss"] = 0.6931, 1.3863 + 1e-6 * (r["step"] % 3)
    flags = health.scan(rows, W_BOUND)
    assert names(flags) == ["stalled"]
    assert flags[0].step >= 150 + health.STALL_WINDOW
    # Tiny losses that still move (weight clipping's scale) are not a stall.
    small = healthy_run(n=300)
    for r in small:
        r["g_loss"] *= 1e-5
        r["d_loss"] *= 1e-5
    assert health.scan(small, W_BOUND) == []


def test_non_finite_values_are_flagged_with_their_names():
    rows = healthy_run(n=50)
    rows[30]["gp"] = "nan"  # as MetricsLog writes it
    rows[31]["g_loss"] = float("inf")
    rows[20]["mode"] = "graph"  # text that is no number is not a non-finite value
    flags = health.scan(rows, W_BOUND)
    assert names(flags) == ["non_finite"]
    assert flags[0].step == 31 and flags[0].hint.startswith("gp became NaN")


def test_a_collapsed_batch_is_flagged():
    rows = healthy_run(n=400)
    for r in rows[200:]:
        if "diversity" in r:
            r["diversity"] = 0.02
    flags = health.scan(rows, W_BOUND)
    assert names(flags) == ["collapse"]
    assert flags[0].step == 200 + 10 * health.DIVERSITY_READINGS
    assert "near-identical" in flags[0].hint
    # Two low readings between healthy ones are noise, not collapse.
    blip = healthy_run(n=400)
    blip[199]["diversity"] = blip[209]["diversity"] = 0.02
    assert health.scan(blip, W_BOUND) == []


def test_falling_class_coverage_is_flagged():
    rows = healthy_run(n=100)
    evals = [{"step": 20, "fid": 90.0, "modes_covered": 8},
             {"step": 40, "fid": 60.0, "modes_covered": 10},
             {"step": 60, "fid": 55.0, "modes_covered": 9},
             {"step": 80, "fid": 70.0, "modes_covered": 7},
             {"step": 100, "fid": 75.0, "modes_covered": 6}]
    stream = rows[:40] + [evals[0]] + rows[40:60] + evals[1:]
    flags = health.scan(stream, W_BOUND)
    assert names(flags) == ["collapse"]
    assert flags[0].step == 100 and "from 10 to 6" in flags[0].hint
    # A one-class dip is noise, and so is one low reading between good ones (seen in real runs).
    assert health.scan(rows + evals[:3], W_BOUND) == []
    swing = [{"step": s, "fid": 1e3, "modes_covered": m}
             for s, m in ((40, 7), (80, 7), (120, 5), (160, 8))]
    assert health.scan(rows + swing, W_BOUND) == []


def test_the_monitor_reports_each_kind_once_and_respects_flags_already_logged():
    rows = healthy_run(n=300)
    for r in rows:
        r["wasserstein"] = 100.0
    monitor = HealthMonitor(W_BOUND)
    first = monitor.observe(rows[:50])
    assert names(first) == ["critic_runaway"]
    assert monitor.observe(rows[50:]) == []
    # On resume the log already holds the flag: nothing is reported again.
    resumed = HealthMonitor(W_BOUND, seen=["critic_runaway"])
    assert resumed.observe(rows) == []


def test_flags_round_trip_through_metrics_rows(tmp_path):
    flag = health.Flag("stalled", 12, "a hint")
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "g_loss": 0.1}\n' + __import__("json").dumps(flag.row())
                    + "\n{cut short")
    with pytest.warns(RunFileWarning, match="line 3: not JSON"):  # the cut-short line
        rows = health.read_rows(path)
    assert len(rows) == 2 and health.logged_flags(rows) == [flag]
    with pytest.warns(RunFileWarning, match="line 3: not JSON"):
        monitor = HealthMonitor.for_run(path, (1, 28, 28))
    assert monitor.seen == {"stalled"} and monitor.w_bound == pytest.approx(56.0)
    assert "step 12: stalled: a hint" in flag.line()


def test_rules_are_pure_functions_of_the_stream():
    rows = healthy_run(n=200)
    for r in rows:
        r["wasserstein"] = 80.0
    before = copy.deepcopy(rows)
    flags = health.check(Stream(rows, (), W_BOUND))
    assert [(f.name, f.step) for f in flags] == [("critic_runaway", 200)]
    assert "about 80" in flags[0].hint and f"the {W_BOUND:.3g} any" in flags[0].hint
    assert rows == before  # the rules read the stream and change nothing in it
    # No state kept between calls: a fresh copy of the rows gives the same flags.
    assert health.check(Stream(before, (), W_BOUND)) == flags
    assert health.critic_runaway(Stream(rows[:5], (), W_BOUND)) is None  # too few rows yet


def test_batch_diversity_is_one_for_real_data_and_zero_for_copies():
    torch.manual_seed(0)
    real = torch.rand(32, 1, 8, 8) * 2 - 1
    other = torch.rand(64, 1, 8, 8) * 2 - 1
    assert health.batch_diversity(other, real) == pytest.approx(1.0, abs=0.05)
    copies = real[:1].repeat(64, 1, 1, 1)
    assert health.batch_diversity(copies, real) == 0.0
    # Two images at distance d: the mean pairwise distance is d.
    pair = torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)])
    assert health.mean_pairwise_distance(pair).item() == pytest.approx(2.0)


def test_generate_as_trained_leaves_batchnorm_statistics_alone():
    from wganlab.models import Generator

    generator = Generator(z_dim=8, image_shape=(1, 8, 8), n_filters=8, n_blocks=1).train()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    images = health.generate_as_trained(generator, torch.randn(16, 8))
    assert images.shape == (16, 1, 8, 8)
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    # A training-mode forward is what the critic sees; inference mode at initialisation
    # would make every image alike and fake a collapse.
    assert health.batch_diversity(images, torch.rand(16, 1, 8, 8) * 2 - 1) > 0.2


@pytest.mark.slow
def test_the_diversity_statistic_does_not_change_the_run(tmp_path, tiny_flags):
    from wganlab.base import checkpoint
    from wganlab.cli import main

    weights = []
    for every in (1, 100):  # diversity every step, and never
        run = tmp_path / f"every-{every}"
        assert main(["train", "--preset", "dcgan", "--steps", "4", "--log-every", str(every),
                     "--out", str(run), *tiny_flags]) == 0
        rows = [r for r in health.read_rows(run / "metrics.jsonl") if "g_loss" in r]
        assert sum("diversity" in r for r in rows) == (4 if every == 1 else 0)
        state = torch.load(checkpoint.list_checkpoints(run)[0], weights_only=True)
        weights.append(state["generator"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

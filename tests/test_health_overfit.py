"""The critic_overfitting health rule: held-out real images drifting towards generated ones in
the critic's eyes is named; a healthy reading, or one spike, is not."""

import pytest

from test_health import healthy_run
from wganlab.metrics import health


def with_overfit(values, p=None):
    rows = healthy_run(n=10 * len(values))
    for i, v in enumerate(values):
        rows[10 * i + 9]["overfit"] = v  # one reading per logged row, every 10 steps
        if p is not None:  # an augmented run logs p beside each reading
            rows[10 * i + 9]["augment_p"] = p
    return rows


def flags(rows):
    return [f for f in health.scan(rows) if f.name == "critic_overfitting"]


def test_a_critic_that_memorises_is_flagged_where_it_starts():
    drift = [0.05 * i for i in range(20)]  # 0 -> 0.95
    found = flags(with_overfit(drift))
    assert len(found) == 1
    first_over = next(i for i, v in enumerate(drift) if v > health.OVERFIT_LIMIT)
    assert found[0].step == 10 * (first_over + health.OVERFIT_READINGS)
    assert "--augment translation" in found[0].hint and "memorising" in found[0].hint


@pytest.mark.parametrize("p", [0.3, 0.75])
def test_a_run_that_augments_already_is_not_told_to_augment(p):
    # p = 0.3 runs on 500 images read 0.9 and more while their FID kept improving.
    found = flags(with_overfit([0.9] * health.OVERFIT_READINGS, p=p))
    assert len(found) == 1
    hint = found[0].hint
    assert f"p = {p:.2f}" in hint and "--augment translation" not in hint
    assert "--eval-every" in hint and "--augment-p" in hint


def test_p_at_zero_is_told_to_augment():  # auto before p has moved, or --augment-p 0
    found = flags(with_overfit([0.9] * health.OVERFIT_READINGS, p=0.0))
    assert len(found) == 1 and "--augment translation" in found[0].hint


def test_a_healthy_critic_and_a_single_spike_are_not_flagged():
    assert not flags(with_overfit([0.1, 0.2, -0.1, 0.15] * 5))
    assert not flags(with_overfit([0.1] * 8 + [0.9] * (health.OVERFIT_READINGS - 1) + [0.1]))
    assert not flags(healthy_run())  # runs without held-out images log no reading

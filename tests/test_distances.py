import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr
from scipy.stats import wasserstein_distance

from wganlab.distances import (
    book_example,
    earth_mover,
    js_divergence,
    kl_divergence,
    parallel_lines,
    report,
    total_variation,
    x_marginal,
)

ALL = [total_variation, kl_divergence, js_divergence, earth_mover]


def random_histograms(seed: int, n: int, sparse: bool = False):
    rng = np.random.default_rng(seed)
    p, q = rng.random(n) * 10, rng.random(n) * 3
    if sparse:  # zeros in p only, so KL(P||Q) stays finite but 0 log 0 is exercised
        p[rng.random(n) < 0.3] = 0.0
        p[0] = 1.0
    return p, q


def test_hand_computed_pair():
    p, q = [0.5, 0.5], [0.25, 0.75]
    m = [0.375, 0.625]
    assert total_variation(p, q) == pytest.approx(0.25)
    assert kl_divergence(p, q) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3))
    assert kl_divergence(q, p) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5))
    js = 0.5 * (0.5 * math.log(0.5 / m[0]) + 0.5 * math.log(0.5 / m[1])) + 0.5 * (
        0.25 * math.log(0.25 / m[0]) + 0.75 * math.log(0.75 / m[1]))
    assert js_divergence(p, q) == pytest.approx(js)
    assert earth_mover(p, q) == pytest.approx(0.25)
    assert earth_mover(p, q, support=[0.0, 4.0]) == pytest.approx(1.0)


def test_earth_mover_moves_mass_across_gaps():
    # All mass moves from position 1 to position 7 (a point mass shift): EM = 6.
    assert earth_mover([1, 0, 0], [0, 0, 1], support=[1.0, 2.0, 7.0]) == pytest.approx(6.0)
    assert earth_mover([1, 0, 0, 0], [0, 0, 0, 1]) == pytest.approx(3.0)


@pytest.mark.parametrize("fn", ALL)
def test_identical_distributions_give_zero(fn):
    p = [0.1, 0.0, 0.6, 0.3]
    assert fn(p, p) == pytest.approx(0.0, abs=1e-15)


def test_kl_is_infinite_where_q_is_zero_and_p_is_not():
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    # The reverse direction only sees 0 log 0 terms there, so it stays finite.
    assert kl_divergence([1.0, 0.0], [0.5, 0.5]) == pytest.approx(math.log(2))


def test_js_is_log2_for_disjoint_supports_and_bounded_otherwise():
    assert js_divergence([1, 1, 0, 0], [0, 0, 3, 1]) == pytest.approx(math.log(2))
    for seed in range(20):
        p, q = random_histograms(seed, 6, sparse=True)
        assert 0.0 <= js_divergence(p, q) <= math.log(2)


@pytest.mark.parametrize("seed", range(5))
def test_matches_scipy_on_random_histograms(seed):
    p, q = random_histograms(seed, 9, sparse=seed % 2 == 1)
    pn, qn = p / p.sum(), q / q.sum()
    assert kl_divergence(p, q) == pytest.approx(rel_entr(pn, qn).sum(), rel=1e-12)
    assert total_variation(p, q) == pytest.approx(0.5 * np.abs(pn - qn).sum(), rel=1e-12)
    # SciPy's jensenshannon returns the distance, the square root of the divergence.
    assert js_divergence(p, q) == pytest.approx(jensenshannon(pn, qn) ** 2, rel=1e-9)
    support = np.cumsum(np.random.default_rng(seed + 100).random(9) + 0.1)
    expected = wasserstein_distance(support, support, u_weights=p, v_weights=q)
    assert earth_mover(p, q, support=support) == pytest.approx(expected, rel=1e-9)
    unit = np.arange(9.0)
    expected_unit = wasserstein_distance(unit, unit, u_weights=p, v_weights=q)
    assert earth_mover(p, q) == pytest.approx(expected_unit, rel=1e-9)


@pytest.mark.parametrize("fn", ALL)
def test_unnormalised_input_is_normalised(fn):
    p, q = np.array([0.2, 0.5, 0.3]), np.array([0.1, 0.4, 0.5])
    assert fn(p * 10, q * 7) == pytest.approx(fn(p, q))
    assert fn([2, 5, 3], [1, 4, 5]) == pytest.approx(fn(p, q))


GOOD = [0.5, 0.5]
BAD_PAIRS = [
    ([0.5, -0.1, 0.6], [0.2, 0.3, 0.5], "p", "negative"),
    ([0.2, 0.3, 0.5], [0.5, 0.6, -0.1], "q", "negative"),
    (GOOD, [0.2, 0.3, 0.5], "length", "length"),
    ([], GOOD, "p", "empty"),
    (GOOD, [], "q", "empty"),
    ([0, 0], GOOD, "p", "zeros"),
    (GOOD, [0.0, 0.0], "q", "zeros"),
    ([np.nan, 1.0], GOOD, "p", "nan"),
    (GOOD, [np.inf, 1.0], "q", "inf"),
    ([[0.5, 0.5]], GOOD, "p", "1-d"),
    (GOOD, 1.0, "q", "1-d"),
    (["a", "b"], GOOD, "p", "numbers"),
]


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("p, q, name, what", BAD_PAIRS)
def test_invalid_distributions_raise(fn, p, q, name, what):
    with pytest.raises(ValueError) as info:
        fn(p, q)
    message = str(info.value).lower()
    assert name in message and what in message


@pytest.mark.parametrize("support, what", [
    ([0.0, 1.0, 2.0], "length"),
    ([1.0, 1.0], "increasing"),
    ([2.0, 1.0], "increasing"),
    ([0.0, np.nan], "nan"),
    ([[0.0, 1.0]], "1-d"),
    (["a", "b"], "numbers"),
])
def test_invalid_support_raises(support, what):
    with pytest.raises(ValueError) as info:
        earth_mover(GOOD, GOOD, support=support)
    message = str(info.value).lower()
    assert "support" in message and what in message


@pytest.mark.parametrize("theta", [0.5, -0.3, 2.0])
def test_parallel_lines_match_the_paper(theta):
    p0, p_theta, points = parallel_lines(theta, n_points=7)
    assert len(points) == p0.size == p_theta.size == 14
    assert kl_divergence(p0, p_theta) == math.inf
    assert total_variation(p0, p_theta) == pytest.approx(1.0)
    assert js_divergence(p0, p_theta) == pytest.approx(math.log(2))
    xs, p_x = x_marginal(p0, points)
    _, q_x = x_marginal(p_theta, points)
    assert xs == sorted([0.0, theta]) and p_x.sum() == pytest.approx(1.0)
    assert earth_mover(p_x, q_x, support=xs) == pytest.approx(abs(theta))


def test_parallel_lines_at_theta_zero_coincide():
    p0, p_theta, points = parallel_lines(0.0, n_points=7)
    assert len(points) == 7
    for fn in ALL:
        assert fn(p0, p_theta) == 0.0
    xs, p_x = x_marginal(p0, points)
    assert xs == [0.0] and earth_mover(p_x, x_marginal(p_theta, points)[1], support=xs) == 0.0


def table_rows(text: str) -> dict[float, list[str]]:
    section = text.split("2. Parallel lines")[1].split("3. Slips")[0]
    rows = {}
    for line in section.splitlines():
        cells = line.split()
        if len(cells) == 5 and cells[0] != "theta":
            rows[float(cells[0])] = cells[1:]
    return rows


def test_book_example_matches_hand_derivation():
    # Fig. 17.15: P = (1/3, 1/3, 1/3), Q = (0.2, 0.5, 0.3), logarithms in base 2.
    # TV: half of |2/15| + |-1/6| + |1/30| = half of 1/3. EM: move 2/15 and 1/30 one step each.
    # KL(P||Q) = 1/3 sum log2((1/3)/q) = -1/3 log2(27 * 0.2 * 0.5 * 0.3) = -1/3 log2(0.81).
    # JS: M = (4/15, 5/12, 19/60); KL(P||M) = 1/3 (log2 5/4 + log2 4/5 + log2 20/19).
    log2 = math.log2
    kl_qm = 0.2 * log2(0.75) + 0.5 * log2(1.2) + 0.3 * log2(18 / 19)
    expected = {"TV": 1 / 6, "KL(P||Q)": -log2(0.81) / 3,
                "KL(Q||P)": 0.2 * log2(0.6) + 0.5 * log2(1.5) + 0.3 * log2(0.9),
                "JS": 0.5 * (log2(20 / 19) / 3 + kl_qm), "EM": 1 / 6}
    got = book_example()
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    # The book's printed values (issue 13's reading), to the digits it gives.
    assert [round(got[k], 3) for k in ("TV", "KL(P||Q)", "KL(Q||P)")] == [0.167, 0.101, 0.099]
    assert round(got["JS"], 4) == 0.0249 and round(got["EM"], 2) == 0.17


def report_rows(text: str, section: str) -> dict[str, list[str]]:
    part = text.split(section)[1].split("\n\n")[0]
    return {line.split()[0]: line.split()[1:] for line in part.splitlines()[3:]
            if len(line.split()) == 3}


def test_report_shows_the_book_example_in_bits_and_nats():
    rows = report_rows(report(), "1. The book's example (Fig. 17.15)")
    assert rows == {"TV": ["0.1667", "0.1667"], "KL(P||Q)": ["0.1013", "0.0702"],
                    "KL(Q||P)": ["0.0995", "0.0690"], "JS": ["0.0249", "0.0173"],
                    "EM": ["0.1667", "0.1667"]}


def test_report_shows_parallel_lines_numbers_and_the_slips():
    text = report()
    rows = table_rows(text)
    assert rows[0.5] == ["+inf", "1.0000", "0.6931", "0.5000"]
    assert rows[-1.0] == ["+inf", "1.0000", "0.6931", "1.0000"]
    assert rows[0.0] == ["0.0000", "0.0000", "0.0000", "0.0000"]
    slips = " ".join(text.split("3. Slips in the text, corrected")[1].split())
    assert "eq. 4" in slips and "sqrt(sigma_B^2 + eps)" in slips
    assert "eq. 7" in slips and "log is missing" in slips and "sign" in slips
    assert "KL(P||Q) = sum_x P(x) log(P(x)/Q(x))" in slips
    assert "eq. 10" in slips and "1/2 log 2" in slips and "JS = log 2 = 0.6931" in slips
    assert "0.0246" in slips and "0.0249 bits" in slips and "0.33" in slips
    assert "Fig. 17.14" in slips and "half the L1" in slips and "they agree" in slips

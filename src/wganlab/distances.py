"""Distances between discrete distributions on a common support (the WGAN paper's four).

For probability vectors P, Q on the same points x_1 < ... < x_n (natural log, 0 log 0 = 0):

    TV(P, Q)  = 1/2 sum_x |P(x) - Q(x)|                          in [0, 1]
    KL(P||Q)  = sum_x P(x) log(P(x) / Q(x))                      +inf if Q(x) = 0 < P(x)
    JS(P, Q)  = 1/2 KL(P||M) + 1/2 KL(Q||M),  M = (P + Q) / 2    in [0, log 2]
    EM(P, Q)  = sum_i |F_P(x_i) - F_Q(x_i)| (x_{i+1} - x_i)      F = cumulative sum

EM is the 1-D earth mover's (Wasserstein-1) distance: unit spacing unless positions are given.
Histograms need not sum to 1; each is divided by its total first.
"""

from __future__ import annotations

import math

import numpy as np

LOG2 = math.log(2.0)


def _as_vector(values, name: str) -> np.ndarray:
    """A finite 1-D float array, or ValueError naming the argument."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers: {exc}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or Inf")
    return array


def _validated(p, q, support=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check p, q (and support) and return p, q normalised; raise ValueError naming the culprit."""
    arrays = {}
    for name, values in (("p", p), ("q", q)):
        array = _as_vector(values, name)
        if array.size == 0:
            raise ValueError(f"{name} is empty")
        if np.any(array < 0):
            raise ValueError(f"{name} has negative mass at index {int(np.argmax(array < 0))}")
        total = array.sum()
        if total == 0:
            raise ValueError(f"{name} is all zeros: no mass to normalise")
        arrays[name] = array / total
    if arrays["p"].size != arrays["q"].size:
        raise ValueError(
            f"p and q have different lengths ({arrays['p'].size} and {arrays['q'].size})")
    if support is None:
        return arrays["p"], arrays["q"], None
    positions = _as_vector(support, "support")
    if positions.size != arrays["p"].size:
        raise ValueError(
            f"support has length {positions.size}, p and q have length {arrays['p'].size}")
    if np.any(np.diff(positions) <= 0):
        raise ValueError("support must be strictly increasing")
    return arrays["p"], arrays["q"], positions


def total_variation(p, q) -> float:
    """TV(P, Q) = 1/2 sum |P - Q|, in [0, 1]."""
    p, q, _ = _validated(p, q)
    return float(0.5 * np.abs(p - q).sum())


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL of already validated vectors; points with P = 0 contribute nothing (0 log 0 = 0)."""
    mass = p > 0
    if np.any(q[mass] == 0):
        return math.inf
    return float(np.sum(p[mass] * np.log(p[mass] / q[mass])))


def kl_divergence(p, q) -> float:
    """KL(P||Q) = sum P log(P/Q), natural log; +inf where Q = 0 < P."""
    p, q, _ = _validated(p, q)
    return _kl(p, q)


def js_divergence(p, q) -> float:
    """JS(P, Q) = 1/2 KL(P||M) + 1/2 KL(Q||M) with M = (P + Q)/2; always in [0, log 2]."""
    p, q, _ = _validated(p, q)
    m = 0.5 * (p + q)
    js = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
    # M > 0 wherever P or Q is, so js is finite; clip only the last-bit rounding error.
    return float(min(max(js, 0.0), LOG2))


def earth_mover(p, q, support=None) -> float:
    """EM(P, Q) on an ordered 1-D support: sum |CDF_P - CDF_Q| times the gap to the next point."""
    p, q, positions = _validated(p, q, support)
    gaps = np.ones(p.size - 1) if positions is None else np.diff(positions)
    cdf_gap = np.abs(np.cumsum(p) - np.cumsum(q))[:-1]
    return float(np.sum(cdf_gap * gaps))


def parallel_lines(theta: float, n_points: int = 11) -> tuple[np.ndarray, np.ndarray, list]:
    """Arjovsky et al. (2017), Example 1, on a grid: P0 on x = 0, P_theta on x = theta.

    Both are uniform over n_points heights y in [0, 1]. Returns P0 and P_theta as mass
    vectors over the shared, sorted point set, and the points as (x, y) pairs.
    """
    heights = np.linspace(0.0, 1.0, n_points)
    xs = sorted({0.0, float(theta)})
    points = [(x, float(y)) for x in xs for y in heights]
    p0 = np.array([x == 0.0 for x, _ in points], dtype=np.float64) / n_points
    p_theta = np.array([x == float(theta) for x, _ in points], dtype=np.float64) / n_points
    return p0, p_theta, points


def x_marginal(mass: np.ndarray, points: list) -> tuple[list, np.ndarray]:
    """Sum mass over y for each distinct x: the distribution of the x coordinate, x sorted."""
    point_x = np.array([x for x, _ in points], dtype=np.float64)
    xs = sorted(set(point_x.tolist()))
    return xs, np.array([np.asarray(mass)[point_x == x].sum() for x in xs])


# The book's worked example (Fig. 17.15): three points, logarithms in base 2.
BOOK_P, BOOK_Q = (1 / 3, 1 / 3, 1 / 3), (0.2, 0.5, 0.3)


def book_example() -> dict[str, float]:
    """Fig. 17.15's five values in bits (TV and EM carry no logarithm), exactly computed."""
    return {"TV": total_variation(BOOK_P, BOOK_Q),
            "KL(P||Q)": kl_divergence(BOOK_P, BOOK_Q) / LOG2,
            "KL(Q||P)": kl_divergence(BOOK_Q, BOOK_P) / LOG2,
            "JS": js_divergence(BOOK_P, BOOK_Q) / LOG2,
            "EM": earth_mover(BOOK_P, BOOK_Q)}


def _fmt(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "+inf"


def _book_section() -> list[str]:
    bits = book_example()
    largest_gap = float(np.max(np.abs(np.subtract(BOOK_P, BOOK_Q))))
    lines = ["1. The book's example (Fig. 17.15)",
             "   P = (1/3, 1/3, 1/3), Q = (0.2, 0.5, 0.3) on x = 1, 2, 3 (unit spacing)",
             f"   {'':9} {'bits':>8} {'nats':>8}"]
    for name, value in bits.items():
        nats = value * LOG2 if name.startswith(("KL", "JS")) else value
        lines.append(f"   {name:9} {value:8.4f} {nats:8.4f}")
    lines += [
        "   TV and EM have no logarithm, so bits and nats agree; KL and JS in nats = bits x ln 2.",
        f"   TV as the book's supremum, max_x |P(x) - Q(x)| = {largest_gap:.4f}: the same 1/6.",
        "   EM moves 2/15 of the mass from x = 1 and 1/30 from x = 3 to x = 2: 1/6.",
    ]
    return lines


def _parallel_lines_section() -> list[str]:
    lines = [
        "2. Parallel lines (Arjovsky et al. 2017, Example 1)",
        "   P0 uniform on the segment x = 0, P_theta on x = theta, y in [0, 1];",
        "   11 heights per line, both flattened onto the union of their grid points.",
        "   EM is computed on the x-marginals; moving each (0, y) to (theta, y) attains it.",
        "   Expected for theta != 0: KL = +inf, TV = 1, JS = log 2 (0.6931 nats, 1 bit),",
        "   EM = |theta|; all four are 0 at theta = 0. Natural log:",
        f"   {'theta':>6} {'KL':>8} {'TV':>8} {'JS':>8} {'EM':>8}",
    ]
    for theta in (0.5, -1.0, 0.0):
        p0, p_theta, points = parallel_lines(theta)
        xs, p_x = x_marginal(p0, points)
        _, q_x = x_marginal(p_theta, points)
        values = (kl_divergence(p0, p_theta), total_variation(p0, p_theta),
                  js_divergence(p0, p_theta), earth_mover(p_x, q_x, support=xs))
        lines.append(f"   {theta:>6.2f} " + " ".join(f"{_fmt(v):>8}" for v in values))
    return lines


def _slips_section() -> list[str]:
    return [
        "3. Slips in the text, corrected",
        "   - eq. 4 (BatchNorm) divides by sigma_B + eps; Keras and PyTorch divide by",
        "     sqrt(sigma_B^2 + eps) (eps = 1e-3 in Keras, as in the seed preset).",
        "   - eq. 7 (discrete KL) reads -sum_x P(x) P(x)/Q(x): the log is missing, and with it",
        "     the sign is wrong for P/Q. KL(P||Q) = sum_x P(x) log(P(x)/Q(x))",
        "     = -sum_x P(x) log(Q(x)/P(x)).",
        "   - eq. 10 gives JS = 1/2 log 2 for the parallel lines; with the standard",
        "     JS = 1/2 KL(P||M) + 1/2 KL(Q||M) each KL term is log 2, so JS = log 2 = 0.6931.",
        f"   - Fig. 17.15 prints JS = 0.0246: exactly {book_example()['JS']:.4f} bits; it prints",
        "     EM = 0.16: exactly 1/6 = 0.1667; and its 0.33 matches sum_x |P(x) - Q(x)| = 1/3,",
        "     twice TV (TV = 1/6).",
        "   - Fig. 17.14 defines TV as a supremum of |P - Q|; wganlab computes half the L1",
        "     distance, which equals the supremum over events, sup_A |P(A) - Q(A)|. On the",
        "     book's examples they agree: 1/6 on Fig. 17.15 (above), 1 on the parallel lines.",
    ]


def report() -> str:
    """The text printed by `wganlab distances`."""
    lines = ["Distances between discrete distributions", ""]
    lines += _book_section() + [""] + _parallel_lines_section() + [""] + _slips_section()
    return "\n".join(lines) + "\n"

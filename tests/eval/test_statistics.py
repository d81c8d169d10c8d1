"""Success-rate intervals and latency summaries against independent references."""

import math

import numpy as np
import pytest

from aim.eval.statistics import Z_95, latency_summary, wilson_interval


def _score_test_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson interval by its definition: every p whose score statistic |p_hat - p| /
    sqrt(p (1 - p) / n) is at most z, found by bisection on each side of p_hat."""
    p_hat = successes / trials

    def inside(p):
        return abs(p_hat - p) <= z * math.sqrt(p * (1 - p) / trials)

    def edge(outside, inner):
        for _ in range(200):
            mid = (outside + inner) / 2
            outside, inner = (outside, mid) if inside(mid) else (mid, inner)
        return inner

    # p_hat is always inside; 0 (or 1) is inside only when p_hat is 0 (or 1).
    return (0.0 if p_hat == 0 else edge(0.0, p_hat)), (1.0 if p_hat == 1 else edge(1.0, p_hat))


@pytest.mark.parametrize("successes,trials,expected", [
    # Published values (e.g. Newcombe 1998, Table I, method 3): 81/263, 15/148, 0/20, 1/29.
    (81, 263, (0.2553, 0.3662)),
    (15, 148, (0.0624, 0.1605)),
    (0, 20, (0.0, 0.1611)),
    (1, 29, (0.0061, 0.1718)),
])
def test_wilson_matches_published_values(successes, trials, expected):
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected[0], abs=6e-5) and high == pytest.approx(expected[1], abs=6e-5)


def test_wilson_matches_the_score_test_inversion_on_random_counts(rng):
    for _ in range(50):
        trials = int(rng.integers(1, 400))
        successes = int(rng.integers(0, trials + 1))
        got = wilson_interval(successes, trials)
        want = _score_test_interval(successes, trials, Z_95)
        assert got == pytest.approx(want, abs=1e-9), (successes, trials)
        assert got[0] <= successes / trials <= got[1]


def test_wilson_rejects_impossible_counts():
    for args in ((1, 0), (-1, 5), (6, 5)):
        with pytest.raises(ValueError, match="successes <= trials"):
            wilson_interval(*args)


def test_latency_summary(rng):
    values = rng.uniform(0.1, 2.0, 37)
    ordered = np.sort(values)
    summary = latency_summary(list(values))
    assert summary["median_s"] == pytest.approx(ordered[18])
    position = 0.9 * (len(values) - 1)  # linear interpolation between order statistics
    below = int(position)
    assert summary["p90_s"] == pytest.approx(ordered[below] + (position - below) * (ordered[below + 1] - ordered[below]))
    assert latency_summary([]) == {"median_s": None, "p90_s": None}

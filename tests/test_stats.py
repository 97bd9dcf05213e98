"""Statistics on data whose answers are known in advance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness import stats

# --- descriptive statistics ---------------------------------------------------------------


def test_median_of_one_to_nine_is_five() -> None:
    assert stats.median(range(1, 10)) == 5
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert math.isnan(stats.median([]))


def test_mad_of_a_known_vector() -> None:
    x = [1, 1, 2, 2, 4, 6, 9]  # median 2, |x - 2| = 1 1 0 0 2 4 7, median 1
    assert stats.mad(x) == 1
    assert stats.mad(x, scaled=True) == pytest.approx(1.4826)


def test_sd_and_cv_of_a_known_vector() -> None:
    x = [2, 4, 4, 4, 5, 5, 7, 9]  # mean 5, sum of squared deviations 32
    assert stats.sd(x) == pytest.approx(math.sqrt(32 / 7))
    assert stats.cv(x) == pytest.approx(math.sqrt(32 / 7) / 5)
    assert math.isnan(stats.sd([3]))


def test_bootstrap_ci_on_constant_data_is_degenerate_and_contains_the_median() -> None:
    assert stats.hierarchical_median_ci([[[7.0, 7.0]] * 3] * 2) == (7.0, 7.0, 7.0)


def test_bootstrap_ci_contains_the_true_median() -> None:
    x = np.random.default_rng(1).normal(100.0, 5.0, size=400)
    med, lo, hi = stats.hierarchical_median_ci([[[v] for v in x]], seed=3)
    assert lo < 100.0 < hi
    assert lo <= med <= hi
    assert hi - lo < 3.0


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    x = np.random.default_rng(2).normal(0, 1, size=50)
    one = [[[v] for v in x]]
    assert stats.hierarchical_median_ci(one, seed=5) == stats.hierarchical_median_ci(one, seed=5)


def test_hierarchical_bootstrap_resamples_sessions() -> None:
    # Session 0 sits at 100, session 1 at 200: resampling sessions gives medians 100, 150, 200,
    # so the CI spans both levels. Resampling runs alone would give a degenerate 150.
    sessions = [[[100.0]] * 5, [[200.0]] * 5]
    med, lo, hi = stats.hierarchical_median_ci(sessions, seed=1)
    assert (med, lo, hi) == (150.0, 100.0, 200.0)


def test_hierarchical_bootstrap_handles_unequal_sessions_and_runs() -> None:
    sessions = [[[1.0, 2.0, 3.0], [2.0]], [[2.0, 2.0]], [[1.0], [3.0], [2.0, 2.0, 2.0, 2.0]]]
    meds = stats.hierarchical_medians(sessions, n_boot=500, rng=np.random.default_rng(0))
    assert meds.shape == (500,)
    assert np.all((meds >= 1.0) & (meds <= 3.0))


def test_ratio_of_two_constant_samples_is_exactly_two() -> None:
    num = [[[2000.0]] * 4] * 2
    den = [[[1000.0]] * 4] * 2
    assert stats.hierarchical_ratio_ci(num, den) == (2.0, 2.0, 2.0)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.2, 1.5, "faster"),
        (0.5, 0.8, "slower"),
        (0.995, 1.2, "no difference"),
        (1.005, 1.02, "no difference"),  # clear of 1, not of the noise band
        (0.5, 2.0, "no difference"),
        (1.011, 1.02, "faster"),
    ],
)
def test_verdict(low: float, high: float, expected: str) -> None:
    assert stats.verdict(low, high, noise=0.01) == expected


def test_outlier_flag_catches_an_injected_outlier() -> None:
    x = [10.0, 11.0, 9.0, 10.0, 12.0, 10.0, 11.0, 100.0]
    assert stats.outlier_flags(x).tolist() == [False] * 7 + [True]
    assert stats.modified_z([1.0, 2.0, 3.0]).tolist() == pytest.approx([-0.6745, 0, 0.6745])


def test_outlier_flags_when_mad_is_zero() -> None:
    # More than half the values equal: the MAD is 0, the mean absolute deviation takes over.
    assert stats.outlier_flags([5.0, 5.0, 5.0, 5.0, 100.0]).tolist() == [False] * 4 + [True]
    assert not stats.outlier_flags([5.0] * 6).any()


def test_geomean_of_two_and_eight_is_four() -> None:
    assert stats.geomean([2, 8]) == pytest.approx(4.0)
    assert math.isnan(stats.geomean([]))
    assert math.isnan(stats.geomean([2, -1]))


@pytest.mark.parametrize(
    ("sessions", "alpha"),
    [(1, 0.05), (2, 3.408e-72), (4, 2.3854e-4), (8, 0.011462), (31, 0.037917), (1000, 0.049605)],
)
def test_expanded_alpha_for_few_sessions(sessions: int, alpha: float) -> None:
    # Hesterberg's expanded percentile interval: alpha' = 2 Phi(-sqrt(k/(k-1)) t(0.975, k-1)).
    assert stats.expanded_alpha(sessions) == pytest.approx(alpha, rel=1e-3)


def test_two_sessions_give_a_ci_spanning_both_session_medians() -> None:
    sessions = [[np.array([100.0])] * 5, [np.array([110.0])] * 5]
    med, lo, hi = stats.hierarchical_median_ci(sessions, n_boot=500)
    assert (med, lo, hi) == (105.0, 100.0, 110.0)

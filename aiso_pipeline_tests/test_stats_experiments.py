"""Experiment statistics against published numbers.

Expected values are copied from GrowthBook's own tests (github.com/growthbook/growthbook):
  packages/stats/tests/frequentist/test_tests.py   (TwoSided / OneSided / Sequential t-tests)
  packages/stats/tests/test_gbstats.py             (count, ratio, CUPED, sequential via analyze_metric_df)
  packages/stats/tests/test_shared_models.py       (statistics, theta, negative baselines)
  packages/stats/tests/test_utils.py               (frequentist_diff)
  packages/shared/test/power.test.ts               (delta-method variance, MDE)
  packages/shared/test/experiments.test.ts         (Holm-Bonferroni, Benjamini-Hochberg)
and from scipy (chisquare, ttest_ind_from_stats) where GrowthBook publishes none.
"""

import functools
import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats as sps

from aiso_pipeline.stats import (
    Cuped,
    CupedRatio,
    cuped_ratio_theta,
    Proportion,
    Ratio,
    SampleMean,
    adjust_p_values,
    analyze,
    compare,
    cuped_theta,
    days_to_mde,
    mde_relative,
    srm_p_value,
)
from aiso_pipeline.stats import decision
from aiso_pipeline.stats.tests import sequential_halfwidth_one_sided, sequential_rho

# This module checks the statistics against gbstats' published numbers, so the relative lift is tested as gbstats
# tests it (delta method on mean_b / mean_a - 1). The default, Fieller's interval, is checked here against a
# numerical inversion of the Welch test and by simulation in test_experiment_simulations.py.
_compare, _analyze, _mde_relative = compare, analyze, mde_relative
compare = functools.partial(_compare, relative="delta")


def analyze(*args, **kw) -> list[dict]:
    """The readout's rows as flat records."""
    return _analyze(*args, relative="delta", **kw).records()


mde_relative = functools.partial(_mde_relative, relative="delta")

approx5 = lambda x: pytest.approx(x, abs=1e-5)  # noqa: E731  gbstats rounds to 5 decimals
approx9 = lambda x: pytest.approx(x, abs=1e-9)  # noqa: E731  test_gbstats.py rounds to 9


def sample_mean(x) -> SampleMean:
    x = np.asarray(x, dtype=float)
    return SampleMean(len(x), x.sum(), (x**2).sum())


def cuped(post, pre) -> Cuped:
    post, pre = np.asarray(post, float), np.asarray(pre, float)
    return Cuped(len(post), post.sum(), (post**2).sum(), pre.sum(), (pre**2).sum(), (post * pre).sum())


def ratio(m, d) -> Ratio:
    m, d = np.asarray(m, float), np.asarray(d, float)
    return Ratio(len(m), m.sum(), (m**2).sum(), d.sum(), (d**2).sum(), (m * d).sum())


# frequentist/test_tests.py fixtures
A = SampleMean(n=3407, sum=1396.87, sum_squares=52377.9767)
B = SampleMean(n=3461, sum=2422.7, sum_squares=134698.29)
A3000 = SampleMean(n=3000, sum=1396.87, sum_squares=52377.9767)


# --------------------------------------------------------------------------------------------------
# Fixed-horizon Welch t-test: test_tests.py TestTwoSidedTTest / TestOneSided*TTest
# --------------------------------------------------------------------------------------------------


def test_two_sided_relative_matches_gbstats():
    r = compare(A, B)
    assert r.rel_lift == approx5(0.70732)
    assert (r.ci_low, r.ci_high) == (approx5(-0.03526), approx5(1.44989))
    assert r.p_value == approx5(0.06191)
    assert r.rel_se == approx5(0.37879)  # Uplift stddev
    assert r.error is None


def test_two_sided_absolute_matches_gbstats():
    r = compare(A, B)
    assert r.abs_lift == approx5(0.7 - 0.41)
    assert (r.abs_ci_low, r.abs_ci_high) == (approx5(0.04538), approx5(0.53462))
    assert r.abs_p_value == approx5(0.02016)
    assert r.abs_se == approx5(0.12478)


def test_welch_matches_scipy_on_absolute_means():
    for a, b in [(A, B), (A3000, B), (sample_mean([1, 2, 3, 4, 9]), sample_mean([2, 5, 7, 8, 8, 12]))]:
        r = compare(a, b)
        t, p = sps.ttest_ind_from_stats(
            b.mean, math.sqrt(b.variance), b.n, a.mean, math.sqrt(a.variance), a.n, equal_var=False
        )
        assert r.abs_p_value == pytest.approx(p, rel=1e-9)
        assert r.abs_lift / r.abs_se == pytest.approx(t, rel=1e-9)


@pytest.mark.parametrize(
    "alternative, rel_ci, rel_p, abs_ci, abs_p",
    [
        ("greater", (-0.045136675850396046, math.inf), 0.06558262868467746,
         (0.020791480063255735, math.inf), 0.03554272489873023),
        ("less", (-math.inf, 1.0518588475628676), 0.9344173713153225,
         (-math.inf, 0.44796185327007765), 0.9644572751012698),
    ],
)
def test_one_sided_matches_gbstats(alternative, rel_ci, rel_p, abs_ci, abs_p):
    r = compare(A3000, B, alternative=alternative)
    assert r.rel_lift == approx5(0.5033610858562358)
    assert r.rel_se == approx5(0.3334122146400735)
    assert (r.ci_low, r.ci_high) == (approx5(rel_ci[0]), approx5(rel_ci[1]))
    assert r.p_value == approx5(rel_p)
    assert r.abs_lift == approx5(0.23437666666666668)
    assert r.abs_se == approx5(0.12983081254184736)
    assert (r.abs_ci_low, r.abs_ci_high) == (approx5(abs_ci[0]), approx5(abs_ci[1]))
    assert r.abs_p_value == approx5(abs_p)


def test_count_metric_matches_analyze_metric_df():
    # test_gbstats.py TestAnalyzeMetricDfFrequentist.test_get_metric_dfs_frequentist, dimension "one"
    r = compare(SampleMean(100, 270, 848.79), SampleMean(120, 300, 869))
    assert (r.control_mean, r.mean) == (approx9(2.7), approx9(2.5))
    assert r.rel_lift == approx9(-0.074074074)
    assert r.p_value == approx9(0.145219005)


def test_negative_baseline_lift_follows_absolute_sign():
    # test_utils.py TestFrequentistDiff / test_shared_models.py TestEffectMomentsNegativeBaseline
    def arm(mean, n=1000):
        return SampleMean(n, mean * n, (mean**2 + 4) * n)

    for mean_a, mean_b, expected in [(10, 15, 0.5), (10, 5, -0.5), (-10, -5, 0.5), (-10, -15, -0.5), (-2, 3, 2.5)]:
        r = compare(arm(mean_a), arm(mean_b))
        assert r.rel_lift == pytest.approx(expected)
        assert np.sign(r.rel_lift) == np.sign(r.abs_lift)
        assert r.rel_se > 0


def test_delta_method_variance_matches_growthbook_power_fixture():
    # power.test.ts frequentistVariance(varA=2, meanA=7, nA=4, varB=0.5, meanB=5, nB=15, relative)
    a = SampleMean(4, 28, 2 * 3 + 28**2 / 4)  # mean 7, variance 2
    b = SampleMean(15, 75, 0.5 * 14 + 75**2 / 15)  # mean 5, variance 0.5
    r = compare(a, b)
    assert round(r.rel_se**2, 5) == 0.00589
    assert round(r.abs_se**2, 5) == 0.53333


# --------------------------------------------------------------------------------------------------
# Ratio metrics (delta method)
# --------------------------------------------------------------------------------------------------


def test_ratio_matches_analyze_metric_df():
    # test_gbstats.py RATIO_STATISTICS_DF / test_get_metric_dfs_frequentist_ratio ("zero" is control)
    control = Ratio(n=100, m_sum=270, m_sum_squares=848.79, d_sum=510, d_sum_squares=810, m_d_sum_of_products=-900)
    treatment = Ratio(n=120, m_sum=300, m_sum_squares=869, d_sum=500, d_sum_squares=800, m_d_sum_of_products=-905)
    r = compare(control, treatment)
    assert r.control_mean == approx9(0.529411765)
    assert r.mean == approx9(0.6)
    assert r.rel_lift == approx9(0.133333333)
    assert r.p_value == approx9(0.610663339)


def test_ratio_covariance_matches_numpy():
    # test_shared_models.py TestRatioStatistic: METRIC_1 / METRIC_3
    m1, m3 = np.array([0.3, 0.5, 0.9, 22]), np.array([2, 1, 5, 3])
    s = ratio(m1, m3)
    assert s.covariance == pytest.approx(np.cov(m1, m3)[0, 1])
    assert s.mean == pytest.approx(m1.sum() / m3.sum())


def test_ratio_zero_denominator_gives_no_inference():
    # test_gbstats.py ZERO_DENOM_RATIO_STATISTICS_DF: gbstats returns its empty result (expected 0, p 1)
    control = Ratio(100, 270, 848.79, 0, 0, 0)
    treatment = Ratio(120, 300, 869, 500, 800, -905)
    r = compare(control, treatment)
    assert r.mean == approx9(0.6)
    assert math.isnan(r.control_mean) and math.isnan(r.rel_lift) and math.isnan(r.p_value)
    assert r.error is not None


# --------------------------------------------------------------------------------------------------
# CUPED / regression adjustment
# --------------------------------------------------------------------------------------------------

RA_CONTROL = Cuped(n=3001, sum=300, sum_squares=600, pre_sum=210, pre_sum_squares=415, post_pre_sum_of_products=-20)
RA_ONE = Cuped(n=3000, sum=222, sum_squares=555, pre_sum=120, pre_sum_squares=405, post_pre_sum_of_products=-10)
RA_TWO = Cuped(n=4000, sum=450, sum_squares=900, pre_sum=300, pre_sum_squares=600, post_pre_sum_of_products=-30)


def test_cuped_matches_analyze_metric_df():
    # test_gbstats.py RA_STATISTICS_DF / test_analyze_metric_df_ra: means stay unadjusted, lift is adjusted
    r = compare(RA_CONTROL, RA_ONE)
    assert r.control_mean == approx9(0.099966678)
    assert r.mean == approx9(0.074)
    assert r.rel_lift == approx9(-0.281707154)
    assert r.p_value == approx9(0.003732549)
    assert round(r.rel_lift, 3) != round((0.074 - 0.110963012) / 0.110963012, 3)


def test_cuped_adjusted_stddevs_match_three_armed_fixture():
    # test_gbstats.py TestThreeArmedCuped: theta is pooled per control/treatment pair
    theta_01, theta_02 = cuped_theta(RA_CONTROL, RA_ONE), cuped_theta(RA_CONTROL, RA_TWO)
    assert math.sqrt(RA_ONE.adjusted_variance(theta_01)) == approx9(0.423529598)
    assert math.sqrt(RA_CONTROL.adjusted_variance(theta_02)) == approx9(0.434288923)
    assert math.sqrt(RA_TWO.adjusted_variance(theta_02)) == approx9(0.458953951)


def test_theta_matches_gbstats_and_is_zero_without_pre_variation():
    # test_shared_models.py TestComputeTheta (pre = METRIC_1, post = METRIC_3 in both arms)
    m1, m3 = np.array([0.3, 0.5, 0.9, 22]), np.array([2, 1, 5, 3])
    s = cuped(post=m3, pre=m1)
    assert round(cuped_theta(s, s), 5) == 0.01864
    flat = Cuped(4, m3.sum(), (m3**2).sum(), 0, 0, 0)
    assert cuped_theta(flat, flat) == 0
    # theta 0: gbstats falls back to the plain test on the post period
    assert compare(flat, flat).p_value == compare(flat.post, flat.post).p_value


def test_cuped_narrows_ci_when_pre_period_predicts_metric():
    rng = np.random.default_rng(7)
    pre_a, pre_b = rng.gamma(2.0, 5.0, 4000), rng.gamma(2.0, 5.0, 4000)
    post_a = 0.9 * pre_a + rng.normal(0, 2, 4000)
    post_b = 0.9 * pre_b + rng.normal(0, 2, 4000) + 0.3
    adjusted = compare(cuped(post_a, pre_a), cuped(post_b, pre_b))
    plain = compare(sample_mean(post_a), sample_mean(post_b))
    assert adjusted.theta == pytest.approx(0.9, abs=0.05)
    assert adjusted.ci_high - adjusted.ci_low < 0.5 * (plain.ci_high - plain.ci_low)
    assert adjusted.abs_ci_high - adjusted.abs_ci_low < 0.5 * (plain.abs_ci_high - plain.abs_ci_low)
    assert adjusted.p_value < plain.p_value
    assert adjusted.mean == pytest.approx(post_b.mean())  # reported mean stays unadjusted


# --------------------------------------------------------------------------------------------------
# Sequential (asymptotic confidence sequences)
# --------------------------------------------------------------------------------------------------


def test_sequential_two_sided_matches_gbstats():
    # test_tests.py TestSequentialTTest.test_sequential_test_runs (tuning 1000)
    r = compare(A3000, B, sequential=True, sequential_tuning_parameter=1000)
    assert r.rel_lift == approx5(0.50336)
    assert (r.ci_low, r.ci_high) == (approx5(-0.55844), approx5(1.56516))
    assert r.rel_se == approx5(0.33341)
    assert r.p_value == 1


def test_sequential_cuped_matches_gbstats():
    # test_tests.py TestSequentialTTest.test_sequential_test_runs_ra (default tuning 5000)
    a = Cuped(3000, 1396.87, 52377.9767, 16.87, 527.9767, 1)
    b = Cuped(3461, 2422.7, 134698.29, 22.7, 1348.29, 1)
    r = compare(a, b, sequential=True)
    assert r.rel_lift == approx5(0.50338)
    assert (r.ci_low, r.ci_high) == (approx5(-0.50969), approx5(1.51646))
    assert r.rel_se == approx5(0.33341)
    assert r.p_value == 1


# test_tests.py test_two_sided_ttest_test_runs_ratio_ra / test_sequential_test_runs_ratio_ra: a ratio metric with CUPED
# (RegressionAdjustedRatioStatistic), fields in gbstats' order: n, m/d post and pre sums and sums of squares, then
# m_post x m_pre, d_post x d_pre, m_pre x d_pre, m_post x d_post, m_post x d_pre, m_pre x d_post
RATIO_RA_A = CupedRatio(100, 485.112236689623, 2715.484666118136, 679.9093275844917, 4939.424001640236,
                        192.59138069991536, 460.076026390857, 290.1398399750233, 920.9461385038898,
                        1113.6215759318352, 2130.9404074446747, 634.239482353647, 3602.146836776702,
                        1559.2878434944676, 1460.3181079276983)
RATIO_RA_B = CupedRatio(100, 514.7757826608777, 2994.897482705013, 705.4090874383759, 5291.36604146392,
                        206.94157227402536, 514.2903702246757, 302.54389139107326, 994.4506208125663,
                        1237.0953021125997, 2292.081739775257, 698.4173425817908, 3918.1561431600717,
                        1701.0287270040265, 1604.0759503266522)


def test_ratio_cuped_matches_gbstats():
    r = compare(RATIO_RA_A, RATIO_RA_B)
    assert r.rel_lift == approx5(-0.0007) and r.rel_se == approx5(0.00391)
    assert (r.ci_low, r.ci_high) == (approx5(-0.00841), approx5(0.00700))
    assert r.p_value == approx5(0.85771)
    seq = compare(RATIO_RA_A, RATIO_RA_B, sequential=True)
    assert (seq.ci_low, seq.ci_high) == (approx5(-0.02063), approx5(0.01923)) and seq.p_value == 1.0
    # the adjustment is real: the unadjusted ratio's interval is several times wider
    plain = compare(RATIO_RA_A.post, RATIO_RA_B.post)
    assert plain.ci_high - plain.ci_low > 3 * (r.ci_high - r.ci_low)


def test_ratio_cuped_theta_and_variance_match_numpy():
    """theta and the adjusted ratio's variance from the raw per-unit data: theta = Cov(R_post, R_pre) / Var(R_pre)
    pooled over the arms by the delta method, and the variance of R_post - theta R_pre the same way."""
    rng = np.random.default_rng(4)

    def arm(n):
        d_pre = rng.poisson(3, n) + 1.0
        m_pre = rng.gamma(2, 1, n) * d_pre
        d = d_pre + rng.poisson(1, n)
        m = 0.7 * m_pre / d_pre * d + rng.gamma(2, 0.5, n) * d
        x = np.stack([m, d, m_pre, d_pre])
        prods = [(0, 2), (1, 3), (2, 3), (0, 1), (0, 3), (2, 1)]
        return x, CupedRatio(n, *[v for i in range(4) for v in (x[i].sum(), (x[i] ** 2).sum())][:4],
                             *[v for i in (2, 3) for v in (x[i].sum(), (x[i] ** 2).sum())],
                             *[(x[i] * x[j]).sum() for i, j in prods])

    (xa, a), (xb, b) = arm(800), arm(900)

    def grads(x):  # gradients of M/D in the means, post block and pre block
        mu = x.mean(axis=1)
        return (np.array([1 / mu[1], -mu[0] / mu[1] ** 2]), np.array([1 / mu[3], -mu[2] / mu[3] ** 2]),
                np.cov(x))

    var = cov = 0.0
    for x in (xa, xb):
        g_post, g_pre, lam = grads(x)
        var += g_pre @ lam[2:, 2:] @ g_pre
        cov += g_pre @ lam[2:, :2] @ g_post
    theta = cov / var
    assert cuped_ratio_theta(a, b) == pytest.approx(theta, rel=1e-9)
    g_post, g_pre, lam = grads(xa)
    g = np.concatenate([g_post, -theta * g_pre])
    assert a.adjusted_variance(theta) == pytest.approx(g @ lam @ g, rel=1e-9)


def test_ratio_cuped_falls_back_without_a_pre_period():
    """No pre-period denominator in an arm (no requests before exposure): the plain ratio test, not a zero
    variance."""
    empty_pre = CupedRatio(100, 485.1, 2715.5, 679.9, 4939.4, 0, 0, 0, 0, 0, 0, 0, 3602.1, 0, 0)
    r = compare(empty_pre, RATIO_RA_B)
    plain = compare(empty_pre.post, RATIO_RA_B.post)
    assert r.theta == 0 and (r.ci_low, r.ci_high, r.p_value) == (plain.ci_low, plain.ci_high, plain.p_value)


def test_sequential_p_value_and_ci_match_analyze_metric_df():
    # test_gbstats.py TestAnalyzeMetricDfSequential (tuning 600), dimension "one"
    control, treatment = SampleMean(100, 270, 848.79), SampleMean(120, 300, 869)
    r = compare(control, treatment, sequential=True, sequential_tuning_parameter=600)
    assert r.rel_lift == approx9(-0.074074074)
    assert r.p_value == approx9(0.892332229)
    assert r.ci_low == approx9(-0.233322085)
    bad = compare(control, treatment, sequential=True, sequential_tuning_parameter=1)
    assert bad.ci_low < r.ci_low


def test_sequential_tuning_is_tightest_near_sample_size():
    # test_tests.py test_sequential_test_tuning_as_expected
    def ci(tuning):
        r = compare(A3000, B, sequential=True, sequential_tuning_parameter=tuning)
        return r.ci_low, r.ci_high

    below, near, above = ci(10), ci(6461), ci(10000)
    assert below[0] < above[0] and below[1] > above[1]
    assert below[0] < near[0] and below[1] > near[1]
    assert above[0] < near[0] and above[1] > near[1]


@pytest.mark.parametrize(
    "alternative, rel_ci, abs_ci, abs_p",
    [
        ("greater", (-0.42356454602790883, math.inf), (-0.12656844172804982, math.inf), 0.46316491943359384),
        ("less", (-math.inf, 1.4302867177403806), (-math.inf, 0.5953217750613832), 0.4999),
    ],
)
def test_sequential_one_sided_matches_gbstats(alternative, rel_ci, abs_ci, abs_p):
    # test_tests.py TestSequentialOneSided{Greater,Lesser}TTest
    r = compare(A3000, B, alternative=alternative, sequential=True)
    assert r.rel_lift == approx5(0.5033610858562358)
    assert (r.ci_low, r.ci_high) == (approx5(rel_ci[0]), approx5(rel_ci[1]))
    assert r.p_value == approx5(0.4999)  # gbstats' search bracket tops out at 0.4999
    assert (r.abs_ci_low, r.abs_ci_high) == (approx5(abs_ci[0]), approx5(abs_ci[1]))
    # gbstats bisects for this p-value and returns the midpoint after its last step (0.4631649...); we
    # solve the same equation exactly, which lands within that bisection's last bracket.
    assert r.abs_p_value == pytest.approx(abs_p, abs=2e-4)
    if abs_p < 0.4999:
        rho = sequential_rho(0.05, 5000, two_sided=False)
        hw = sequential_halfwidth_one_sided(r.abs_se**2 * 6461, 6461, r.abs_p_value, rho)
        assert r.abs_lift - hw == pytest.approx(0, abs=1e-9)  # the one-sided bound touches 0 at alpha = p


def test_sequential_peeking_keeps_false_positives_below_alpha():
    # A/A experiments peeked at daily for 30 days: the fixed-horizon test's "ever significant" rate
    # inflates well past alpha, the confidence sequence's does not.
    rng = np.random.default_rng(2024)
    sims, days, per_day = 300, 30, 100
    ever_fixed = ever_seq = 0
    for _ in range(sims):
        x = rng.normal(10, 3, (2, days * per_day))
        s, ss = np.cumsum(x, axis=1), np.cumsum(x**2, axis=1)
        hit_fixed = hit_seq = False
        for d in range(1, days + 1):
            k = d * per_day - 1
            a, b = SampleMean(k + 1, s[0, k], ss[0, k]), SampleMean(k + 1, s[1, k], ss[1, k])
            hit_fixed |= compare(a, b).p_value < 0.05
            hit_seq |= compare(a, b, sequential=True).p_value < 0.05
        ever_fixed += hit_fixed
        ever_seq += hit_seq
    assert ever_fixed / sims > 0.15
    assert ever_seq / sims < 0.05


def test_sequential_p_value_agrees_with_its_interval():
    for control, treatment in [(A, B), (A3000, B), (RA_CONTROL.post, RA_ONE.post)]:
        r = compare(control, treatment, sequential=True)
        assert (r.p_value < 0.05) == (r.ci_low > 0 or r.ci_high < 0)


def _welch_at_ratio(a: SampleMean, b: SampleMean, r: float) -> float:
    """The t statistic of mean_b - r mean_a = 0 (arms independent), computed from the raw moments."""
    va, vb = a.variance / a.n, b.variance / b.n
    return (b.mean - r * a.mean) / math.sqrt(vb + r * r * va)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_fieller_interval_inverts_the_welch_test(alternative):
    """Each finite bound of the default relative interval is a ratio where the Welch statistic of
    mean_b - r mean_a reaches its critical value, found here by root finding; the p-value is the absolute test's."""
    from scipy.optimize import brentq

    for control, treatment in [(A, B), (A3000, B), (B, A), (RA_CONTROL.post, RA_ONE.post)]:
        r = _compare(control, treatment, alternative=alternative)
        absolute = compare(control, treatment, alternative=alternative)
        assert r.p_value == absolute.abs_p_value
        assert r.rel_lift == pytest.approx(treatment.mean / control.mean - 1, rel=1e-12)
        q = sps.t.ppf(0.975 if alternative == "two-sided" else 0.95, r.dof)
        est = treatment.mean / control.mean
        if alternative != "less":  # lower bound: the statistic falls to +q above it
            low = brentq(lambda x: _welch_at_ratio(control, treatment, x) - q, est - 10, est)
            assert r.ci_low == pytest.approx(low - 1, abs=1e-9)
        else:
            assert r.ci_low == -math.inf
        if alternative != "greater":
            high = brentq(lambda x: _welch_at_ratio(control, treatment, x) + q, est, est + 10)
            assert r.ci_high == pytest.approx(high - 1, abs=1e-9)
        else:
            assert r.ci_high == math.inf


def test_fieller_interval_excludes_zero_exactly_when_p_is_below_alpha():
    rng = np.random.default_rng(11)
    for _ in range(300):
        n = int(rng.integers(20, 400))
        a = rng.lognormal(1.0, 1.0, n)
        b = rng.lognormal(1.0 + rng.normal(0, 0.15), 1.0, n)
        for sequential in (False, True):
            r = _compare(sample_mean(a), sample_mean(b), sequential=sequential)
            assert (r.p_value < 0.05) == (r.ci_low > 0 or r.ci_high < 0), (n, sequential, r)


def test_fieller_interval_is_unbounded_when_the_control_mean_is_not_bounded_away_from_zero():
    """3 conversions in 100: the control rate itself is not significantly above 0, so no finite interval holds the
    ratio at 95%. The report prints the bounds as infinities, not as missing."""
    from aiso_pipeline.experiments.report import pct

    r = _compare(Proportion(100, 2, 2), Proportion(100, 6, 6))
    assert (r.ci_low, r.ci_high) == (-math.inf, math.inf) and r.rel_lift == pytest.approx(2.0)
    assert r.p_value == pytest.approx(compare(Proportion(100, 2, 2), Proportion(100, 6, 6)).abs_p_value)
    assert (pct(r.ci_low), pct(r.ci_high)) == ("−∞", "+∞")


# --------------------------------------------------------------------------------------------------
# SRM, multiple testing, MDE
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "observed, weights",
    [
        ([5000, 5000], [0.5, 0.5]),
        ([5000, 5300], [0.5, 0.5]),
        ([1000, 2100, 2950], [1, 2, 3]),
        ([820, 1180], [0.4, 0.6]),
    ],
)
def test_srm_matches_scipy_chisquare(observed, weights):
    total = sum(observed)
    expected = [w / sum(weights) * total for w in weights]
    assert srm_p_value(observed, weights) == pytest.approx(sps.chisquare(observed, expected).pvalue, rel=1e-12)
    names = [f"v{i}" for i in range(len(observed))]
    assert srm_p_value(dict(zip(names, observed)), dict(zip(names, weights))) == pytest.approx(
        sps.chisquare(observed, expected).pvalue, rel=1e-12
    )


def test_srm_edge_cases():
    assert srm_p_value([0, 0], [0.5, 0.5]) == 1.0
    assert srm_p_value([100], [1.0]) == 1.0
    assert srm_p_value({"a": 5000, "b": 5400}) < 0.001  # equal weights by default
    assert srm_p_value({"a": 500, "b": 500, "c": 7}, {"a": 1, "b": 1}) == 1.0  # unweighted variants ignored


def test_holm_matches_growthbook_fixture():
    # experiments.test.ts "does HB procedure correctly"
    adj = adjust_p_values([0.01, 0.04, 0.03, 0.005, 0.55, 0.6], "holm")
    assert adj == pytest.approx([0.05, 0.12, 0.12, 0.03, 1, 1])
    assert adjust_p_values([0.025, 0.03], "holm") == pytest.approx([0.05, 0.05])


def test_bh_matches_growthbook_fixture():
    # experiments.test.ts "does BH procedure correctly"
    adj = adjust_p_values([0.898, 0.138, 0.007, 0.964, 0.538, 0.006, 0.138], "bh")
    assert adj == pytest.approx([0.964, 0.2415, 0.0245, 0.964, 0.7532, 0.0245, 0.2415])
    assert adjust_p_values([0.025, 0.03], "bh") == pytest.approx([0.03, 0.03])


def test_adjust_p_values_leaves_nan_out():
    adj = adjust_p_values([0.01, float("nan"), 0.04], "holm")
    assert adj[0] == pytest.approx(0.02) and math.isnan(adj[1]) and adj[2] == pytest.approx(0.04)
    assert adjust_p_values([], "bh").size == 0
    with pytest.raises(ValueError):
        adjust_p_values([0.1], "bonferroni-ish")


def test_mde_matches_growthbook_power_fixture():
    # power.test.ts: mean 10, variance 3909.99977..., 400000 users over 3 variations, alpha 0.05, power 0.8
    var, n_per_arm = 3909.9997749994377, 400000 / 3
    assert round(mde_relative(10, var, n_per_arm), 5) == 0.07027
    # GrowthBook's sequential MDE (0.12821) inflates the power term with the sequence's width too: at that lift the
    # test has ~94% power, not 80%. Ours widens only the significance term (its 80% is checked by simulation in
    # test_experiment_simulations.py), so it is smaller, and still above the fixed-horizon MDE.
    seq = mde_relative(10, var, n_per_arm, sequential_tuning_parameter=5000)
    assert 0.07027 < round(seq, 5) == 0.11044 < 0.12821
    assert round(mde_relative(-10, var, n_per_arm), 5) == 0.07027  # sign of the baseline does not matter


def test_mde_undefined_when_too_few_units():
    assert math.isnan(mde_relative(0.01, 1.0, 10))  # n below sigma^2 k^2 / mu^2: no MDE exists
    assert math.isnan(mde_relative(0.0, 1.0, 1000))
    assert math.isnan(mde_relative(1.0, float("nan"), 1000))
    assert mde_relative(1.0, 1.0, 4000) < mde_relative(1.0, 1.0, 1000)


def test_days_to_mde_at_the_current_rate_by_hand():
    """Fieller, fixed horizon, a mean metric: MDE = (z_alpha + z_power) sqrt(s_a + s_b) / mean, so n times c gives
    MDE / sqrt(c), and the target needs c = (MDE / target)^2: D = ceil(days (c - 1)) further days."""
    k = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    mean, var, n, days = 10.0, 400.0, 1000, 7
    mde_now = k * math.sqrt(2 * var / n) / mean
    assert _mde_relative(mean, var, n, var, n) == pytest.approx(mde_now, rel=1e-9)  # the default, Fieller's
    for target in (0.2, 0.15, 0.1):
        expected = math.ceil(days * ((mde_now / target) ** 2 - 1))
        assert days_to_mde(target, days, mean, var, n, var, n) == expected, target
    assert days_to_mde(0.5, days, mean, var, n, var, n) == 0  # already reached
    assert days_to_mde(1e-4, days, mean, var, n, var, n) == math.inf  # not within 10 years at this rate
    assert math.isnan(days_to_mde(0.1, 0, mean, var, n, var, n))  # no calendar yet


def test_days_to_mde_of_a_sequential_test_is_the_first_day_it_reaches_the_target():
    kw = dict(sequential_tuning_parameter=5000, proportion=True)
    mean, var, n, days, target = 0.2, 0.16, 700, 7, 0.1
    d = days_to_mde(target, days, mean, var, n, var, n, **kw)
    at = lambda extra: _mde_relative(mean, var, n * (days + extra) / days, var, n * (days + extra) / days, **kw)
    assert 0 < d < math.inf and at(d) <= target < at(d - 1)
    assert d > days_to_mde(target, days, mean, var, n, var, n, proportion=True)  # wider than a fixed horizon


# --------------------------------------------------------------------------------------------------
# Decision rules
# --------------------------------------------------------------------------------------------------


READY = decision.Progress(days=14, window_end=date(2025, 6, 14), units={"control": 5000, "treatment": 5000})
SEQ = decision.Policy(sequential=True)


def mr(role, lift, lo=None, hi=None, p_adj=0.5, harm=None, margin=0.02):
    """A result whose interval is [lo, hi] (default: lift +- 0.05)."""
    harm = harm or ("increase" if role == "guardrail" else "decrease")
    lo = lift - 0.05 if lo is None else lo
    hi = lift + 0.05 if hi is None else hi
    return decision.Result("m", "treatment", role, harm, lift, lo, hi, p_adj, margin if role == "guardrail" else 0)


def decide(results, srm_p=0.5, policy=SEQ, progress=READY):
    return decision.decide(results, srm_p, policy, progress)[0]


def test_decide_rules():
    better = mr("primary", 0.1, p_adj=0.01)
    worse = mr("primary", -0.1, p_adj=0.01)
    flat = mr("primary", 0.1, p_adj=0.2)
    fine = mr("guardrail", 0.0, lo=-0.01, hi=0.01)           # no harm
    wide = mr("guardrail", 0.01, lo=-0.2, hi=0.2)            # within the margin, however wide the interval
    harmed = mr("guardrail", 0.2, lo=0.05, hi=0.3)           # harm beyond 2% significant
    unsure = mr("guardrail", 0.06, lo=-0.02, hi=0.14)        # looks worse than 2%, not significantly: inconclusive
    assert decide([better, fine]) == "ship"
    assert decide([better, fine], srm_p=0.0001) == "invalid"
    assert decide([better, harmed]) == "stop"
    assert decide([worse, fine]) == "stop"
    assert decide([flat, fine]) == "keep_running"
    assert decide([better, unsure]) == "ship"                # harm not significant beyond the margin: no stop
    assert decision.decide([flat, unsure], 0.5, SEQ, READY)[1].startswith("Guardrail m looks worse than its 2%")
    assert decide([better, wide]) == "ship"
    assert decide([flat, unsure]) == "keep_running"
    assert decide([]) == "keep_running"
    # a guardrail's harm inside its margin is no stop, however significant against no change
    assert decide([flat, mr("guardrail", 0.01, lo=0.005, hi=0.015)]) == "keep_running"
    # secondary metrics never decide; NaN never counts as significant
    assert decide([mr("secondary", -0.5, p_adj=0.0001), flat]) == "keep_running"
    assert decide([mr("primary", float("nan"), p_adj=float("nan"))]) == "keep_running"
    # a lower-is-better primary (harm "increase") that went down is better
    assert decide([mr("primary", -0.1, p_adj=0.01, harm="increase")]) == "ship"
    # a guardrail whose harm is "decrease" is harmed by a drop only
    assert decide([better, mr("guardrail", -0.2, lo=-0.3, hi=-0.1, harm="decrease")]) == "stop"
    assert decide([better, mr("guardrail", 0.2, lo=0.1, hi=0.3, harm="decrease")]) == "ship"


def test_decisions_wait_for_the_burn_in_or_the_planned_horizon():
    better, fine = mr("primary", 0.1, p_adj=0.01), mr("guardrail", 0.0, lo=-0.01, hi=0.01)
    early = decision.Progress(days=3, window_end=date(2025, 6, 3), units={"control": 5000, "treatment": 5000})
    small = decision.Progress(days=14, window_end=date(2025, 6, 14), units={"control": 5000, "treatment": 40})
    verdict, reason = decision.decide([better, fine], 0.5, SEQ, early)
    assert verdict == "keep_running" and reason.startswith("Burn-in: 3 of 7 days")
    assert decide([better, fine], progress=small) == "keep_running"
    fixed_open = decision.Policy(sequential=False)
    verdict, reason = decision.decide([better, fine], 0.5, fixed_open, READY)
    assert verdict == "keep_running" and "without a planned end or sample_size" in reason
    planned = decision.Policy(sequential=False, planned_end=date(2025, 6, 20))
    assert decide([better, fine], policy=planned) == "keep_running"  # before its end
    assert decide([better, fine], policy=planned, progress=decision.Progress(
        20, date(2025, 6, 20), {"control": 5000, "treatment": 5000})) == "ship"
    by_size = decision.Policy(sequential=False, planned_units_per_arm=4000)
    assert decide([better, fine], policy=by_size) == "ship"
    # SRM is reported at once, burn-in or not
    assert decision.decide([better], 1e-6, SEQ, early)[0] == "invalid"


# --------------------------------------------------------------------------------------------------
# analyze(): one experiment end to end
# --------------------------------------------------------------------------------------------------


# CONTRACT section 7: the columns of marts.experiment_readouts that are statistics
CONTRACT_STATISTICS = ("metric", "variant", "control_variant", "is_guardrail", "units", "mean", "control_mean",
                       "abs_lift", "rel_lift", "ci_low", "ci_high", "p_value", "p_value_adjusted", "significant",
                       "srm_p_value", "srm_flag", "mde", "decision", "decision_reason")


def users(rng, n, p_convert, latency_mean, revenue_scale=1.0):
    converted = rng.random(n) < p_convert
    requests = rng.integers(1, 6, n)
    successes = rng.binomial(requests, 0.9)
    latency = rng.gamma(4.0, latency_mean / 4.0, n) * requests  # total latency over a user's requests
    revenue = converted * rng.exponential(20 * revenue_scale, n)
    return {
        "conversion_rate": sample_mean(converted),
        "revenue_per_user": sample_mean(revenue),
        "success_rate": ratio(successes, requests),
        "latency_ms": ratio(latency, requests),
    }


def experiment(rng, n_control=5000, n_treatment=5000, lift=0.0, latency_treatment=500.0):
    arms = {
        "control": users(rng, n_control, 0.10, 500.0),
        "treatment": users(rng, n_treatment, 0.10 * (1 + lift), latency_treatment),
    }
    return {m: {v: arms[v][m] for v in arms} for m in arms["control"]}


GUARDS = {"latency_ms": "increase"}


def run(stats, **kw):
    kw.setdefault("primary", "conversion_rate")
    kw.setdefault("guardrails", GUARDS)
    return analyze("exp1", stats, "control", **kw)


def by_metric(rows):
    return {r["metric"]: r for r in rows}


def test_analyze_rows_have_contract_columns():
    rows = run(experiment(np.random.default_rng(1)))
    assert len(rows) == 4  # 4 metrics x 1 non-control variant
    for r in rows:
        assert set(CONTRACT_STATISTICS) <= set(r)
        assert r["experiment_id"] == "exp1" and r["control_variant"] == "control" and r["variant"] == "treatment"
    m = by_metric(rows)
    assert [r["metric"] for r in rows][0] == "conversion_rate"
    assert m["conversion_rate"]["metric_role"] == "primary"
    assert m["revenue_per_user"]["metric_role"] == "secondary" and m["success_rate"]["metric_role"] == "secondary"
    assert m["latency_ms"]["is_guardrail"] and not m["conversion_rate"]["is_guardrail"]
    assert len({r["decision"] for r in rows}) == 1 and len({r["srm_p_value"] for r in rows}) == 1
    r = m["conversion_rate"]
    assert r["units"] == 5000 and r["control_units"] == 5000
    assert r["ci_low"] < r["rel_lift"] < r["ci_high"]
    assert r["abs_ci_low"] < r["abs_lift"] < r["abs_ci_high"]
    assert 0 < r["mde"] < 1


def test_analyze_row_values_come_from_compare():
    stats = experiment(np.random.default_rng(2))
    rows = by_metric(run(stats))
    c = compare(stats["success_rate"]["control"], stats["success_rate"]["treatment"])
    r = rows["success_rate"]
    assert (r["mean"], r["control_mean"]) == (c.mean, c.control_mean)
    assert (r["rel_lift"], r["p_value"]) == (c.rel_lift, c.p_value)
    assert (r["ci_low"], r["ci_high"]) == (c.ci_low, c.ci_high)


def test_analyze_holm_over_primary_and_secondary_guardrails_uncorrected():
    stats = experiment(np.random.default_rng(3), lift=0.1)
    other = experiment(np.random.default_rng(33), lift=0.2)
    for m in stats:
        stats[m]["b"] = other[m]["treatment"]
    rows = run(stats)
    tested = [r for r in rows if not r["is_guardrail"]]
    assert len(tested) == 3 * 2  # 3 non-guardrail metrics x 2 non-control variants
    assert [r["p_value_adjusted"] for r in tested] == pytest.approx(
        list(adjust_p_values([r["p_value"] for r in tested], "holm")), nan_ok=True
    )
    bh = [r for r in run(stats, correction="bh") if not r["is_guardrail"]]
    assert [r["p_value_adjusted"] for r in bh] == pytest.approx(
        list(adjust_p_values([r["p_value"] for r in bh], "bh")), nan_ok=True
    )
    for r in rows:
        if r["is_guardrail"]:
            assert r["p_value_adjusted"] == r["p_value"]


def test_analyze_ships_clear_primary_win():
    rows = run(experiment(np.random.default_rng(4), 20000, 20000, lift=0.3))
    m = by_metric(rows)
    assert m["conversion_rate"]["significant"] and m["conversion_rate"]["rel_lift"] > 0
    assert not m["latency_ms"]["significant"]
    assert {r["decision"] for r in rows} == {"ship"}


def test_analyze_stops_on_harmed_guardrail():
    rows = run(experiment(np.random.default_rng(5), 20000, 20000, lift=0.3, latency_treatment=560.0))
    m = by_metric(rows)
    g = m["latency_ms"]
    assert g["significant"] and g["rel_lift"] > 0 and g["p_value"] < 0.05
    assert g["ci_level"] == pytest.approx(0.9) and g["ci_low"] > 0  # harm-side bound excludes 0
    assert {r["decision"] for r in rows} == {"stop"}
    # the same data with the harm direction reversed is not harm
    assert not by_metric(run(experiment(np.random.default_rng(5), 20000, 20000, lift=0.3, latency_treatment=560.0),
                             guardrails={"latency_ms": "decrease"}))["latency_ms"]["significant"]


def test_analyze_stops_when_primary_significantly_worse():
    rows = run(experiment(np.random.default_rng(6), 20000, 20000, lift=-0.3))
    assert by_metric(rows)["conversion_rate"]["rel_lift"] < 0
    assert {r["decision"] for r in rows} == {"stop"}
    # unless lower is better for that primary
    rows = run(experiment(np.random.default_rng(6), 20000, 20000, lift=-0.3), lower_is_better=["conversion_rate"])
    assert {r["decision"] for r in rows} == {"ship"}


def test_analyze_keeps_running_when_nothing_is_significant():
    rows = run(experiment(np.random.default_rng(8), 3000, 3000))
    assert not by_metric(rows)["conversion_rate"]["significant"]
    assert {r["decision"] for r in rows} == {"keep_running"}


def test_analyze_invalid_on_srm():
    stats = experiment(np.random.default_rng(9), 5000, 5600, lift=0.5)
    rows = run(stats)
    assert rows[0]["srm_p_value"] < 0.001 and rows[0]["srm_flag"]
    assert {r["decision"] for r in rows} == {"invalid"}
    # the same split is fine when it was the plan (a wide latency margin: the guardrail is shown within it)
    rows = run(stats, weights={"control": 5000, "treatment": 5600}, margins={"latency_ms": 0.2})
    assert not rows[0]["srm_flag"] and rows[0]["decision"] == "ship"
    # a variant that was expected but got no units is a mismatch too
    rows = run(experiment(np.random.default_rng(9)), weights={"control": 1, "treatment": 1, "c": 1})
    assert rows[0]["srm_flag"] and {r["variant"] for r in rows} == {"treatment", "c"}


def test_analyze_sequential_is_more_conservative():
    stats = experiment(np.random.default_rng(10), 20000, 20000, lift=0.08)
    fixed, seq = by_metric(run(stats)), by_metric(run(stats, sequential=True))
    for m in ("conversion_rate", "success_rate"):
        assert seq[m]["ci_high"] - seq[m]["ci_low"] > fixed[m]["ci_high"] - fixed[m]["ci_low"]
        assert seq[m]["p_value"] >= fixed[m]["p_value"]
        assert seq[m]["mde"] > fixed[m]["mde"]


def test_analyze_with_cuped_stats():
    rng = np.random.default_rng(11)
    pre_a, pre_b = rng.gamma(2.0, 5.0, 3000), rng.gamma(2.0, 5.0, 3000)
    post_a, post_b = pre_a + rng.normal(0, 2, 3000), pre_b + rng.normal(0, 2, 3000) + 0.5
    rows = analyze(
        "exp2", {"revenue_per_user": {"control": cuped(post_a, pre_a), "treatment": cuped(post_b, pre_b)}},
        "control", primary="revenue_per_user",
    )
    assert rows[0]["mean"] == pytest.approx(post_b.mean()) and rows[0]["significant"]
    assert rows[0]["decision"] == "ship"


# --------------------------------------------------------------------------------------------------
# Degenerate inputs: never raise, never significant
# --------------------------------------------------------------------------------------------------


def test_degenerate_two_units_negative_variance():
    # test_tests.py test_two_sided_ttest_missing_variance: n=2 with these sums has negative variance
    r = compare(SampleMean(2, 1396.87, 52377.9767), B)
    assert math.isnan(r.p_value) and math.isnan(r.ci_low) and r.error is not None


@pytest.mark.parametrize(
    "control, treatment",
    [
        (SampleMean(0, 0, 0), SampleMean(0, 0, 0)),
        (SampleMean(3, 20, 443), SampleMean(1, 1, 1)),  # test_gbstats.py ONE_USER_DF
        (SampleMean(100, 0, 0), SampleMean(100, 7, 7)),  # zero control mean and zero variance
        (SampleMean(100, 100, 100), SampleMean(100, 100, 100)),  # both constant
        (sample_mean([-1, 1] * 50), sample_mean([0, 2] * 50)),  # zero control mean, positive variance
        (Ratio(50, 0, 0, 0, 0, 0), Ratio(50, 5, 5, 60, 80, 6)),
        (Ratio(1, 1, 1, 2, 4, 2), Ratio(1, 1, 1, 2, 4, 2)),
        (Cuped(1, 1, 1, 1, 1, 1), Cuped(1, 2, 4, 1, 1, 2)),
        (Cuped(100, 0, 0, 0, 0, 0), Cuped(100, 0, 0, 0, 0, 0)),
        (SampleMean(None, None, None), SampleMean(10, Decimal("5"), Decimal("5"))),  # NULLs / Decimals from SQL
        (SampleMean(10, float("nan"), float("nan")), SampleMean(10, 5, 5)),
        (Ratio(10, 5, 5, 10, 10, 5), SampleMean(10, 5, 5)),  # incomparable kinds
    ],
)
def test_degenerate_inputs_do_not_raise(control, treatment):
    for kw in ({}, {"sequential": True}, {"alternative": "greater"}, {"alternative": "less", "sequential": True}):
        r = compare(control, treatment, **kw)
        assert not (r.p_value < 0.05)
    rows = analyze("x", {"m": {"c": control, "t": treatment}, "g": {"c": control, "t": treatment}}, "c",
                   primary="m", guardrails={"g": "increase"})
    assert len(rows) == 2
    for row in rows:
        assert row["significant"] is False and row["decision"] in ("keep_running", "invalid")


def test_degenerate_zero_control_mean_gives_nan_relative_lift_only():
    r = compare(sample_mean([-1, 1] * 50), sample_mean([0, 2] * 50))
    assert math.isnan(r.rel_lift) and math.isnan(r.ci_low) and math.isnan(r.p_value)
    assert r.abs_lift == pytest.approx(1.0) and r.abs_p_value < 0.05  # the absolute scale is well defined


def test_analyze_missing_arms_and_metrics():
    stats = {
        "conversion_rate": {"control": SampleMean(100, 10, 10)},
        "latency_ms": {"treatment": Ratio(5, 1, 1, 1, 1, 1)},
    }
    guards = {"latency_ms": "increase", "error_rate": "increase"}
    rows = analyze("x", stats, "control", primary="conversion_rate", guardrails=guards)
    assert {(r["metric"], r["variant"]) for r in rows} == {
        ("conversion_rate", "treatment"), ("latency_ms", "treatment"), ("error_rate", "treatment")
    }
    for r in rows:
        assert math.isnan(r["p_value"]) and r["significant"] is False
    assert analyze("x", {}, "control") == []
    # control absent from the data altogether
    rows = analyze("x", {"m": {"a": SampleMean(100, 50, 50)}}, "control", primary="m")
    assert len(rows) == 1 and math.isnan(rows[0]["p_value"]) and rows[0]["srm_flag"]


def test_corrections_match_statsmodels_on_random_p_values():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for _ in range(200):
        p = rng.uniform(0, 1, rng.integers(1, 12)) ** rng.uniform(0.5, 4)
        for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
            np.testing.assert_allclose(adjust_p_values(p, ours), multipletests(p, method=theirs)[1], atol=1e-12)


def test_proportions_use_p_times_one_minus_p_as_gbstats():
    # test_gbstats.py TestTwoSidedTTest.test_two_sided_ttest_binom
    r = compare(Proportion(28, 14, 14), Proportion(30, 16, 16))
    assert r.rel_lift == approx5((16 / 30 - 0.5) / 0.5)
    assert (r.ci_low, r.ci_high) == (approx5(-0.47767), approx5(0.61101))
    assert r.p_value == approx5(0.80707)
    # the n - 1 sample variance of the zeros and ones gives the wider interval gbstats does not
    wide = compare(SampleMean(28, 14, 14), SampleMean(30, 16, 16))
    assert wide.ci_high - wide.ci_low > r.ci_high - r.ci_low

"""Frequentist A/B statistics on per-variant sufficient statistics.

Modelled on GrowthBook's gbstats frequentist engine (packages/stats/gbstats: frequentist/tests.py,
models/tests.py, models/statistics.py, utils.py) so the numbers match its published test fixtures:
Welch t-tests on absolute and relative lift (Fieller's interval; gbstats' delta method on request), ratio
metrics by the delta method, CUPED with
theta pooled over both arms, asymptotic confidence sequences for peeking, chi-square SRM, Holm / BH
correction, a relative MDE (GrowthBook's power.ts), and the ship / stop / keep_running / invalid decision.

Pure numpy/scipy/statsmodels: no Dagster or DuckDB here. Nothing raises on data-shaped problems (too few
units, zero variance, zero control mean, missing arms): those give NaN estimates and `significant=False`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from aiso_pipeline.stats import decision

NAN = float("nan")
Alternative = Literal["two-sided", "greater", "less"]
Harm = Literal["increase", "decrease"]
Relative = Literal["fieller", "log", "delta"]

DEFAULT_ALPHA = 0.05
DEFAULT_SRM_THRESHOLD = 0.001
DEFAULT_SEQUENTIAL_TUNING = 5000.0
DEFAULT_POWER = 0.8

# The contract columns of marts.experiment_readouts that come from statistics, in order, then the extras.
READOUT_COLUMNS = (
    "experiment_id", "metric", "variant", "control_variant", "is_guardrail", "units", "mean",
    "control_mean", "abs_lift", "rel_lift", "ci_low", "ci_high", "p_value", "p_value_adjusted",
    "significant", "srm_p_value", "srm_flag", "mde", "decision", "decision_reason",
)
EXTRA_COLUMNS = ("metric_role", "control_units", "abs_ci_low", "abs_ci_high", "abs_p_value", "ci_level", "margin")


# --------------------------------------------------------------------------------------------------
# Sufficient statistics (one per variant per metric)
# --------------------------------------------------------------------------------------------------


def _coerce_fields(obj) -> None:
    # Sums straight from SQL can be None (no rows), Decimal or numpy scalars: make them plain numbers so
    # the arithmetic below never trips on types. NULL sums mean "nothing observed", i.e. 0.
    for name, value in vars(obj).items():
        v = 0.0 if value is None else float(value)
        if name == "n":
            v = int(v) if math.isfinite(v) and v > 0 else 0
        object.__setattr__(obj, name, v)


def _div(a: float, b: float) -> float:
    return a / b if b != 0 and np.isfinite(b) else NAN


def _sample_variance(n: float, s: float, ss: float) -> float:
    # Unbiased (n - 1) variance from sums, as gbstats SampleMeanStatistic; undefined below 2 units.
    return (ss - s * s / n) / (n - 1) if n >= 2 else NAN


def _sample_covariance(n: float, sa: float, sb: float, sab: float) -> float:
    # gbstats compute_covariance for sample-mean components.
    return (sab - sa * sb / n) / (n - 1) if n >= 2 else NAN


@dataclass(frozen=True)
class SampleMean:
    """A per-unit metric (e.g. conversion 0/1, revenue per user): unit count, sum and sum of squares."""

    n: int
    sum: float
    sum_squares: float

    __post_init__ = _coerce_fields

    @property
    def mean(self) -> float:
        return _div(self.sum, self.n)

    @property
    def variance(self) -> float:
        return _sample_variance(self.n, self.sum, self.sum_squares)


@dataclass(frozen=True)
class Proportion(SampleMean):
    """A 0/1 per-unit metric (converted or not): its variance is p(1 - p), as gbstats ProportionStatistic, not the
    n - 1 sample variance of the zeros and ones (gbstats' 14/28 vs 16/30 fixture tells them apart)."""

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1 - p) if self.n > 0 else NAN


@dataclass(frozen=True)
class Ratio:
    """A ratio of per-unit sums, e.g. success_rate = sum(successes) / sum(requests) over users.

    Units (users), not requests, are independent, so the variance comes from the per-user numerator and
    denominator by the delta method (gbstats RatioStatistic), not from a binomial over requests.
    """

    n: int
    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    m_d_sum_of_products: float

    __post_init__ = _coerce_fields

    @property
    def mean(self) -> float:
        return _div(self.m_sum, self.d_sum)

    @property
    def covariance(self) -> float:
        return _sample_covariance(self.n, self.m_sum, self.d_sum, self.m_d_sum_of_products)

    @property
    def variance(self) -> float:
        """Per-unit delta-method variance of the ratio (divide by n for the variance of the estimate)."""
        if self.n < 2:
            return NAN
        return variance_of_ratios(
            self.m_sum / self.n, _sample_variance(self.n, self.m_sum, self.m_sum_squares),
            self.d_sum / self.n, _sample_variance(self.n, self.d_sum, self.d_sum_squares),
            self.covariance,
        )


@dataclass(frozen=True)
class Cuped:
    """A per-unit metric with the same metric over the pre-exposure period, for CUPED.

    Units without pre-period data contribute 0 to the pre sums, as in GrowthBook.
    """

    n: int
    sum: float
    sum_squares: float
    pre_sum: float
    pre_sum_squares: float
    post_pre_sum_of_products: float
    proportion: bool = False  # a 0/1 metric: post and pre are Proportions

    def __post_init__(self):
        proportion = self.proportion
        _coerce_fields(self)
        object.__setattr__(self, "proportion", bool(proportion))

    @property
    def post(self) -> SampleMean:
        return (Proportion if self.proportion else SampleMean)(self.n, self.sum, self.sum_squares)

    @property
    def pre(self) -> SampleMean:
        return (Proportion if self.proportion else SampleMean)(self.n, self.pre_sum, self.pre_sum_squares)

    @property
    def mean(self) -> float:
        """The unadjusted post-period mean (what gets reported)."""
        return self.post.mean

    @property
    def covariance(self) -> float:
        return _sample_covariance(self.n, self.sum, self.pre_sum, self.post_pre_sum_of_products)

    def adjusted_mean(self, theta: float) -> float:
        return self.post.mean - theta * self.pre.mean

    def adjusted_variance(self, theta: float) -> float:
        """Per-unit variance of Y - theta * X (gbstats RegressionAdjustedStatistic.variance)."""
        if self.n < 2:
            return NAN
        return self.post.variance + theta**2 * self.pre.variance - 2 * theta * self.covariance


Stat = SampleMean | Ratio | Cuped


def variance_of_ratios(mean_m: float, var_m: float, mean_d: float, var_d: float, cov_m_d: float) -> float:
    """Delta-method variance of M / D (gbstats utils.variance_of_ratios)."""
    if mean_d == 0 or not np.isfinite(mean_d):
        return NAN
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2 * cov_m_d * mean_m / mean_d**3


def cuped_theta(control: Cuped, treatment: Cuped) -> float:
    """theta = Cov(post, pre) / Var(pre), pooled over both arms (gbstats compute_theta).

    Pooling keeps one adjustment for both arms, so the adjusted difference stays unbiased. 0 means no
    usable pre-period variation, in which case gbstats (and we) fall back to the unadjusted test.
    """
    n = control.n + treatment.n
    if n < 2:
        return 0.0
    s, ss = control.sum + treatment.sum, control.sum_squares + treatment.sum_squares
    ps, pss = control.pre_sum + treatment.pre_sum, control.pre_sum_squares + treatment.pre_sum_squares
    var_post, var_pre = _sample_variance(n, s, ss), _sample_variance(n, ps, pss)
    if not (var_pre > 0 and var_post > 0):
        return 0.0
    cov = _sample_covariance(n, s, ps, control.post_pre_sum_of_products + treatment.post_pre_sum_of_products)
    return float(cov / var_pre)


# --------------------------------------------------------------------------------------------------
# Pairwise moments: the point estimates and variances every test below works from
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moments:
    """Control (a) vs treatment (b): estimator means, per-unit variances and the relative-lift variance."""

    n_a: int
    n_b: int
    mean_a: float  # estimator mean (CUPED-adjusted when theta != 0)
    mean_b: float
    unadjusted_mean_a: float  # reported means
    unadjusted_mean_b: float
    var_a: float  # per-unit variance of the estimator
    var_b: float
    rel_variance: float  # variance of the relative lift estimate (already divided by n)
    theta: float = 0.0

    @property
    def abs_lift(self) -> float:
        return self.mean_b - self.mean_a

    @property
    def abs_variance(self) -> float:
        return self.var_b / self.n_b + self.var_a / self.n_a if self.n_a > 0 and self.n_b > 0 else NAN

    @property
    def rel_lift(self) -> float:
        # gbstats frequentist_diff: divide by |unadjusted control mean| so the sign follows the absolute lift.
        base = self.unadjusted_mean_a
        return (self.mean_b - self.mean_a) / abs(base) if base != 0 and np.isfinite(base) else NAN

    @property
    def dof(self) -> float:
        return welch_dof(self.var_a, self.n_a, self.var_b, self.n_b)


def _relative_variance(mean_a: float, var_a: float, n_a: int, mean_b: float, var_b: float, n_b: int) -> float:
    # gbstats utils.frequentist_variance (relative): delta method for mean_b / mean_a, arms independent.
    if n_a <= 0 or n_b <= 0:
        return NAN
    return variance_of_ratios(mean_b, var_b / n_b, mean_a, var_a / n_a, 0.0)


def _cuped_relative_variance(a: Cuped, b: Cuped, theta: float) -> float:
    # gbstats models/tests.frequentist_variance_relative_cuped: delta method for
    # (adj_b - adj_a) / |post_a|, where the control post mean sits in numerator and denominator.
    mu_a, mu_b = a.post.mean, b.post.mean
    if not (a.n > 0 and b.n > 0) or mu_a == 0 or not np.isfinite(mu_a):
        return NAN
    v_trt = b.adjusted_variance(theta) / (b.n * mu_a**2)
    const = -mu_b
    v_ctrl = (
        a.post.variance * const**2 / mu_a**2
        + 2 * theta * a.covariance * const / mu_a
        + theta**2 * a.pre.variance
    ) / (a.n * mu_a**2)
    return v_trt + v_ctrl


def moments(control: Stat, treatment: Stat) -> Moments | None:
    """Moments for a control/treatment pair of the same kind; None when the kinds cannot be compared.

    A Cuped arm paired with a SampleMean arm is compared on the post-period only.
    """
    a, b = control, treatment
    if isinstance(a, Cuped) != isinstance(b, Cuped) and not (isinstance(a, Ratio) or isinstance(b, Ratio)):
        a, b = (a.post if isinstance(a, Cuped) else a), (b.post if isinstance(b, Cuped) else b)
    if isinstance(a, Cuped) and isinstance(b, Cuped):
        theta = cuped_theta(a, b)
        if theta != 0:
            return Moments(
                a.n, b.n, a.adjusted_mean(theta), b.adjusted_mean(theta), a.mean, b.mean,
                a.adjusted_variance(theta), b.adjusted_variance(theta),
                _cuped_relative_variance(a, b, theta), theta,
            )
        a, b = a.post, b.post  # no pre-period signal: plain test, as gbstats does
    if type(a) is not type(b):
        return None
    return Moments(
        a.n, b.n, a.mean, b.mean, a.mean, b.mean, a.variance, b.variance,
        _relative_variance(a.mean, a.variance, a.n, b.mean, b.variance, b.n),
    )


# --------------------------------------------------------------------------------------------------
# Tests: fixed-horizon Welch t-test and asymptotic confidence sequences
# --------------------------------------------------------------------------------------------------


def welch_dof(var_a: float, n_a: float, var_b: float, n_b: float) -> float:
    """Welch-Satterthwaite degrees of freedom (gbstats TTest.dof)."""
    if n_a < 2 or n_b < 2:
        return NAN
    num = (var_b / n_b + var_a / n_a) ** 2
    den = var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1))
    return num / den if den > 0 else NAN


def sequential_rho(alpha: float, tuning: float = DEFAULT_SEQUENTIAL_TUNING, two_sided: bool = True) -> float:
    """Mixture parameter for the asymptotic confidence sequence (eq. 161, Waudby-Smith et al. 2023).

    `tuning` is the total sample size at which the sequence is tightest (gbstats default 5000).
    """
    a = alpha if two_sided else 2 * alpha
    return math.sqrt((-2 * math.log(a) + math.log(-2 * math.log(a) + 1)) / tuning)


def sequential_halfwidth(s2: float, n: float, alpha: float, rho: float) -> float:
    """Two-sided confidence-sequence half-width (eq. 9); s2 = n * Var(estimate), n = total units."""
    nr2 = n * rho**2
    return math.sqrt(s2) * math.sqrt(2 * (nr2 + 1) * math.log(math.sqrt(nr2 + 1) / alpha) / (n * rho) ** 2)


def sequential_halfwidth_one_sided(s2: float, n: float, alpha: float, rho: float) -> float:
    """One-sided confidence-sequence half-width (eq. 134)."""
    nr2 = n * rho**2
    return math.sqrt(s2 * 2 * (nr2 + 1) / (n * rho) ** 2 * math.log(1 + math.sqrt(nr2 + 1) / (2 * alpha)))


# gbstats searches the one-sided sequential p-value within this bracket; we solve it in closed form.
_SEQ_ONE_SIDED_P_MIN, _SEQ_ONE_SIDED_P_MAX = 1e-5, 0.4999


@dataclass(frozen=True)
class Inference:
    """One scale (absolute or relative) of one comparison."""

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float



def multiplier(dof: float, n: float, *, alpha: float, alternative: Alternative, sequential: bool,
               tuning: float) -> float:
    """The interval's half-width in standard errors: Student's t at `dof`, or the confidence sequence's (which
    depends on the total units `n`, not on the variance)."""
    two_sided = alternative == "two-sided"
    if not sequential:
        return float(sps.t.ppf(1 - alpha / 2 if two_sided else 1 - alpha, dof))
    rho = sequential_rho(alpha, tuning, two_sided=two_sided)
    half = sequential_halfwidth if two_sided else sequential_halfwidth_one_sided
    return half(float(n), n, alpha, rho)  # s2 = n: one standard error


def _infer(
    est: float, var: float, dof: float, n: int, *, alpha: float, alternative: Alternative,
    sequential: bool, tuning: float,
) -> Inference:
    if not (np.isfinite(est) and var > 0 and np.isfinite(var) and (sequential or dof > 0)):
        return Inference(est, NAN, NAN, NAN, NAN)
    se = math.sqrt(var)
    hw = multiplier(dof, n, alpha=alpha, alternative=alternative, sequential=sequential, tuning=tuning) * se
    low, high = (est - hw, est + hw) if alternative == "two-sided" else \
        (est - hw, math.inf) if alternative == "greater" else (-math.inf, est + hw)
    if not sequential:
        # gbstats TwoSidedTTest / OneSidedTreatment{Greater,Lesser}TTest; sf instead of 1 - cdf keeps tiny p.
        t_stat = est / se
        p = {"two-sided": 2 * sps.t.sf(abs(t_stat), dof), "greater": sps.t.sf(t_stat, dof),
             "less": sps.t.cdf(t_stat, dof)}[alternative]
        return Inference(est, se, low, high, float(p))
    if alternative == "two-sided":
        # gbstats SequentialTwoSidedTTest: CI from eq. 9, p-value = 1 / e-value (eq. 155).
        rho = sequential_rho(alpha, tuning, two_sided=True)
        nr2p1 = n * rho**2 + 1
        st2 = est**2 * n / var  # gbstats' reparameterised S_t^2 / (t sigma^2); makes p < alpha <=> 0 outside CI
        log_e = rho**2 * st2 / (2 * nr2p1) - 0.5 * math.log(nr2p1)  # log e-value, in logs to avoid overflow
        return Inference(est, se, low, high, 1.0 if log_e <= 0 else math.exp(-log_e))
    # gbstats SequentialOneSidedTreatment{Greater,Lesser}TTest. rho stays at the test's alpha while the
    # p-value is the alpha at which the one-sided bound touches 0; gbstats bisects for it within
    # [1e-5, 0.4999], here solved exactly from eq. 134 and clipped to the same bracket.
    rho = sequential_rho(alpha, tuning, two_sided=False)
    nr2 = n * rho**2
    toward = est > 0 if alternative == "greater" else est < 0
    if not toward:
        p = _SEQ_ONE_SIDED_P_MAX
    else:
        big_l = est**2 * (n * rho) ** 2 / (2 * var * n * (nr2 + 1))  # log(1 + sqrt(nr2+1)/(2 alpha)) at the crossing
        p_exact = math.sqrt(nr2 + 1) / (2 * math.expm1(big_l)) if big_l < 700 else 0.0
        p = min(max(p_exact, _SEQ_ONE_SIDED_P_MIN), _SEQ_ONE_SIDED_P_MAX)
    return Inference(est, se, low, high, p)


@dataclass(frozen=True)
class Comparison:
    """Treatment vs control. `p_value`/`ci_*` are on the relative lift, `abs_*` on the absolute lift.

    `mean`/`control_mean` are unadjusted; with CUPED the lifts use the adjusted means (as gbstats does),
    so abs_lift need not equal mean - control_mean. `error` says why inference is missing, if it is.
    """

    units: int
    control_units: int
    mean: float
    control_mean: float
    abs_lift: float
    abs_se: float
    abs_ci_low: float
    abs_ci_high: float
    abs_p_value: float
    rel_lift: float
    rel_se: float
    ci_low: float
    ci_high: float
    p_value: float
    dof: float
    theta: float
    alternative: str
    sequential: bool
    error: str | None = None


def compare(
    control: Stat,
    treatment: Stat,
    *,
    alpha: float = DEFAULT_ALPHA,
    alternative: Alternative = "two-sided",
    sequential: bool = False,
    sequential_tuning_parameter: float = DEFAULT_SEQUENTIAL_TUNING,
    relative: Relative = "fieller",
) -> Comparison:
    """Welch t-test (or confidence sequence when `sequential`) of treatment vs control on both scales.

    alternative: "two-sided"; "greater" tests treatment > control; "less" tests treatment < control.
    relative: how the relative lift is tested. "fieller" (the default): the interval is Fieller's for the ratio
    mean_b / mean_a, inverting the same test as the absolute lift (so the p-value is the absolute one and the interval
    excludes 0 exactly when p < alpha). It is not symmetric around the lift, as the ratio's distribution is not, and
    it keeps each tail at most 3% on heavy-tailed revenue where gbstats' symmetric "delta" interval on
    mean_b / mean_a - 1 says "worse" eight times as often as "better" and the "log" interval on log(mean_b / mean_a)
    lets both tails grow to 4% (lognormal sigma 2, 2,000 users per arm, A/A, alpha 0.05: see
    test_experiment_simulations.py). "delta" is used where the control mean is not positive and for CUPED-adjusted
    comparisons, and reproduces gbstats.
    """
    m = moments(control, treatment)
    n_a, n_b = int(getattr(control, "n", 0) or 0), int(getattr(treatment, "n", 0) or 0)
    if m is None:
        return _empty_comparison(control, treatment, alternative, sequential, "incomparable statistic types")
    error = None
    if n_a < 2 or n_b < 2:
        error = "fewer than 2 units in an arm"
    elif not (m.var_a > 0 and m.var_b > 0):
        error = "zero or undefined variance in an arm"  # gbstats: ZERO_NEGATIVE_VARIANCE_MESSAGE
    kw = dict(alpha=alpha, alternative=alternative, sequential=sequential, tuning=sequential_tuning_parameter)
    n = n_a + n_b
    abs_lift = m.abs_lift if n_a > 0 and n_b > 0 else NAN
    rel_lift = m.rel_lift if n_a > 0 and n_b > 0 and m.mean_a != 0 else NAN
    if error is None:
        abs_inf = _infer(abs_lift, m.abs_variance, m.dof, n, **kw)
        # CUPED shifts both arms' estimators by theta x a pre-period mean, so their ratio is not the lift: a CUPED
        # comparison keeps gbstats' delta interval on (adj_b - adj_a) / |control mean|
        if relative == "fieller" and m.theta == 0 and m.mean_a > 0 and np.isfinite(rel_lift):
            rel_inf = _fieller_inference(m, n, abs_inf, kw)
        elif relative == "log" and m.theta == 0 and m.mean_a > 0 and m.mean_b > 0 and np.isfinite(rel_lift):
            rel_inf = _log_ratio_inference(m, n, kw)
        else:
            rel_inf = _infer(rel_lift, m.rel_variance, m.dof, n, **kw)
        if not np.isfinite(rel_lift):
            error = "control mean is zero"  # gbstats: BASELINE_VARIATION_ZERO_MESSAGE
    else:
        abs_inf, rel_inf = Inference(abs_lift, NAN, NAN, NAN, NAN), Inference(rel_lift, NAN, NAN, NAN, NAN)
    return Comparison(
        units=n_b, control_units=n_a, mean=m.unadjusted_mean_b, control_mean=m.unadjusted_mean_a,
        abs_lift=abs_inf.estimate, abs_se=abs_inf.se, abs_ci_low=abs_inf.ci_low, abs_ci_high=abs_inf.ci_high,
        abs_p_value=abs_inf.p_value, rel_lift=rel_inf.estimate, rel_se=rel_inf.se, ci_low=rel_inf.ci_low,
        ci_high=rel_inf.ci_high, p_value=rel_inf.p_value, dof=m.dof, theta=m.theta,
        alternative=alternative, sequential=sequential, error=error,
    )


def _fieller_inference(m: Moments, n: int, abs_inf: Inference, kw: dict) -> Inference:
    """The relative lift r - 1 by Fieller's theorem: the interval holds every ratio r that the test of
    mean_b - r mean_a = 0 does not reject, |mean_b - r mean_a| <= k sqrt(v_b + r^2 v_a) with the absolute test's
    multiplier k (Student's t, or the confidence sequence's). At r = 1 that test is the absolute one, so the p-value
    is the absolute lift's and the interval excludes 0 exactly when p < alpha. Unbounded (+-inf) when the control
    mean is itself not distinguishable from 0 at this level."""
    k = multiplier(m.dof, n, alpha=kw["alpha"], alternative=kw["alternative"], sequential=kw["sequential"],
                   tuning=kw["tuning"])
    ma, mb, va, vb = m.mean_a, m.mean_b, m.var_a / m.n_a, m.var_b / m.n_b
    # (mb - r ma)^2 = k^2 (vb + r^2 va)  <=>  a r^2 - 2 b r + c = 0, a root pair bounding r when a > 0
    a, b, c = ma**2 - k**2 * va, ma * mb, mb**2 - k**2 * vb
    if a > 0:
        root = math.sqrt(max(b * b - a * c, 0.0))
        low, high = (b - root) / a - 1, (b + root) / a - 1
    else:
        low, high = -math.inf, math.inf
    if kw["alternative"] == "greater":
        high = math.inf
    elif kw["alternative"] == "less":
        low = -math.inf
    estimate = mb / ma - 1
    return Inference(estimate, math.sqrt(m.rel_variance), low, high, abs_inf.p_value)


def _log_ratio_inference(m: Moments, n: int, kw: dict) -> Inference:
    """The relative lift tested on the log scale: log(mean_b / mean_a) +- its delta-method half-width, mapped back
    with exp - 1 (an interval that is not symmetric around the lift, as the ratio's distribution is not)."""
    log_est = math.log(m.mean_b / m.mean_a)
    var_log = m.var_b / (m.n_b * m.mean_b ** 2) + m.var_a / (m.n_a * m.mean_a ** 2)
    inf = _infer(log_est, var_log, m.dof, n, **kw)
    back = lambda x: math.expm1(x) if np.isfinite(x) else (-1.0 if x < 0 else math.inf)  # noqa: E731
    estimate = math.expm1(log_est)
    return Inference(estimate, inf.se * (1 + estimate), back(inf.ci_low), back(inf.ci_high), inf.p_value)


def _empty_comparison(control, treatment, alternative, sequential, error) -> Comparison:
    def mean_of(s):
        return s.mean if isinstance(s, (SampleMean, Ratio, Cuped)) else NAN

    return Comparison(
        int(getattr(treatment, "n", 0) or 0), int(getattr(control, "n", 0) or 0), mean_of(treatment),
        mean_of(control), NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0.0, alternative, sequential,
        error,
    )


# --------------------------------------------------------------------------------------------------
# SRM, multiple testing, MDE
# --------------------------------------------------------------------------------------------------


def srm_p_value(observed: Mapping[str, float] | Sequence[float], weights=None) -> float:
    """Chi-square goodness of fit of unit counts against expected weights (gbstats utils.check_srm).

    Variants with a non-positive weight are left out (gbstats still counts them in the degrees of freedom);
    no units or fewer than two weighted variants give 1.0 (nothing to test).
    """
    if isinstance(observed, Mapping):
        names = list(observed)
        obs = [float(observed[k]) for k in names]
        if weights is None:
            w = [1.0] * len(names)
        elif isinstance(weights, Mapping):
            w = [float(weights.get(k, 0.0)) for k in names]
        else:
            w = [float(x) for x in weights]
    else:
        obs = [float(x) for x in observed]
        w = [1.0] * len(obs) if weights is None else [float(x) for x in weights]
    pairs = [(o, wi) for o, wi in zip(obs, w) if wi > 0]
    total_obs, total_w = sum(o for o, _ in pairs), sum(wi for _, wi in pairs)
    if len(pairs) < 2 or total_obs <= 0:
        return 1.0
    x2 = sum((o - wi / total_w * total_obs) ** 2 / (wi / total_w * total_obs) for o, wi in pairs)
    return float(sps.chi2.sf(x2, len(pairs) - 1))


def adjust_p_values(p_values: Sequence[float], method: str = "holm") -> np.ndarray:
    """Holm-Bonferroni ("holm") or Benjamini-Hochberg ("bh") adjusted p-values; NaNs stay NaN, uncounted."""
    if method not in ("holm", "bh", "fdr_bh"):
        raise ValueError(f"unknown correction method {method!r}; use 'holm' or 'bh'")
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, NAN)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = _holm(np.clip(p[ok], 0.0, 1.0)) if method == "holm" else _bh(np.clip(p[ok], 0.0, 1.0))
    return out


# Written out rather than statsmodels' multipletests, which runs gc.collect() on every call (~0.2 s each with
# Dagster loaded). Same results: the tests check both against published fixtures.
def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down: sorted ascending, p_(i) * (m - i), made monotone non-decreasing, capped at 1."""
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p))))
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg step-up: sorted descending, p_(i) * m / rank, made monotone non-increasing, capped at 1."""
    m = len(p)
    order = np.argsort(p, kind="stable")[::-1]
    ranks = np.arange(m, 0, -1)
    stepped = np.minimum.accumulate(p[order] * m / ranks)
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return out


def mde_relative(
    control_mean: float,
    control_variance: float,
    control_n: float,
    treatment_variance: float | None = None,
    treatment_n: float | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    sequential_tuning_parameter: float | None = None,
    two_sided: bool = True,
    relative: Relative = "fieller",
    proportion: bool = False,
) -> float:
    """Smallest relative lift a test at `alpha` (two-sided, or one-sided as guardrails are tested) detects with
    `power` at the current sample sizes.

    The lift at which the test compare() runs (`relative`) reaches its critical value plus z_power standard errors,
    found by bisection: "fieller" tests mean_b - mean_a, "log" log(mean_b / mean_a). A proportion's treatment
    variance is taken at the alternative. "delta" is GrowthBook's findMdeFrequentist (shared/src/power/power.ts,
    docs power-technical): the relative lift's variance grows with the lift, so it solves the quadratic in the
    treatment mean; generalised to unequal arms. With a tuning parameter the critical value is the confidence
    sequence's. NaN when no such lift exists at this sample size.
    """
    var_b = control_variance if treatment_variance is None else treatment_variance
    n_b = control_n if treatment_n is None else treatment_n
    vals = (control_mean, control_variance, control_n, var_b, n_b)
    if not all(v is not None and np.isfinite(v) for v in vals) or control_n <= 0 or n_b <= 0:
        return NAN
    if control_mean == 0 or control_variance < 0 or var_b < 0 or not (alpha < power < 1):
        return NAN
    # The interval's multiple of the standard error: z, or the confidence sequence's wider one. The power term
    # stays z_power (inflating the whole variance, as before, overstated the sequential MDE: 94% power, not 80%).
    z_alpha = multiplier(math.inf, control_n + n_b, alpha=alpha, alternative="two-sided" if two_sided else "greater",
                         sequential=bool(sequential_tuning_parameter),
                         tuning=sequential_tuning_parameter or DEFAULT_SEQUENTIAL_TUNING)
    z_power = -float(sps.norm.ppf(1 - power))
    s_a, s_b = control_variance / control_n, var_b / n_b
    k = z_alpha + z_power
    m = abs(control_mean)  # the relative lift is symmetric in the sign of the baseline
    if relative in ("fieller", "log"):  # the test compare() runs, against k times its standard error
        def gap(lift: float) -> float:
            mu_b = m * (1 + lift)
            # a proportion's variance moves with its mean: at the alternative it is mu_b (1 - mu_b)
            v_b = mu_b * (1 - mu_b) / n_b if proportion and mu_b < 1 else s_b
            if relative == "fieller":  # the test at r = 1 is the absolute one: mu_b - m
                return m * lift - k * math.sqrt(v_b + s_a)
            return math.log1p(lift) - k * math.sqrt(v_b / mu_b ** 2 + s_a / m ** 2)  # log(mu_b / m)
        hi = 1.0
        while gap(hi) < 0:
            hi *= 2
            if hi > 1e6:
                return NAN
        lo = 0.0
        for _ in range(100):  # bisection: gap rises with the lift
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if gap(mid) < 0 else (lo, mid)
        return float(hi)
    # (mu_b - m)^2 = k^2 (s_b + s_a mu_b^2 / m^2)  <=>  a mu_b^2 - 2 m mu_b + (m^2 - k^2 s_b) = 0
    a = 1 - k**2 * s_a / m**2
    if a <= 0:
        return NAN
    disc = m**2 - a * (m**2 - k**2 * s_b)
    if disc < 0:
        return NAN
    mu_b = (m + math.sqrt(disc)) / a
    return float((mu_b - m) / m)


# --------------------------------------------------------------------------------------------------
# Decision and the one-call readout
# --------------------------------------------------------------------------------------------------


def analyze(
    experiment_id: str,
    stats: Mapping[str, Mapping[str, Stat]],
    control: str,
    *,
    primary: str | None = None,
    secondary: Iterable[str] | None = None,
    guardrails: Mapping[str, Harm] | None = None,
    margins: Mapping[str, float] | None = None,
    lower_is_better: Iterable[str] = (),
    weights: Mapping[str, float] | None = None,
    units: Mapping[str, int] | None = None,
    alpha: float = DEFAULT_ALPHA,
    correction: str = "holm",
    sequential: bool = False,
    sequential_tuning_parameter: float = DEFAULT_SEQUENTIAL_TUNING,
    srm_threshold: float = DEFAULT_SRM_THRESHOLD,
    power: float = DEFAULT_POWER,
    policy: decision.Policy | None = None,
    progress: decision.Progress | None = None,
    relative: Relative = "fieller",
) -> list[dict]:
    """Readout rows (marts.experiment_readouts statistics columns + extras) for one experiment.

    stats: metric -> variant -> SampleMean | Ratio | Cuped. Roles: `primary`; `secondary` (default: every
    other metric in `stats` that is not a guardrail); `guardrails`: metric -> harm direction ("increase"
    for latency/cost/errors), each with a relative non-inferiority `margins[metric]` (default
    decision.DEFAULT_MARGIN). Primary/secondary metrics are two-sided and corrected together over
    (metric x non-control variant) by `correction` ("holm" | "bh"); their harm is "decrease" unless listed
    in `lower_is_better`. Guardrails are one-sided for harm at alpha / (guardrails x variants) (Bonferroni: all
    of them together keep a false stop at alpha); their ci_low/ci_high are the two one-sided bounds at that level,
    `significant` means harm beyond the margin, and p_value_adjusted = p_value (vs no change). `units` (variant
    -> exposed units) feeds the SRM check; by default the largest n seen per variant. `weights` default to
    equal. A metric that is both primary and guardrail is analysed as primary. The decision follows `policy`
    and `progress` (stats.decision; without them: sequential as given, no burn-in, no planned end).
    """
    guardrails = dict(guardrails or {})
    margins = {m: float((margins or {}).get(m, decision.DEFAULT_MARGIN)) for m in guardrails}
    lower = set(lower_is_better)
    for m, harm in guardrails.items():
        if harm not in ("increase", "decrease"):
            raise ValueError(f"guardrail {m!r}: harm direction must be 'increase' or 'decrease', not {harm!r}")
    # Precedence primary > guardrail > secondary: one row per metric x variant, and a metric someone asked
    # to guard keeps its uncorrected one-sided harm test. Rows come out primary, secondaries, guardrails.
    goal_harm = lambda m: "increase" if m in lower else "decrease"  # noqa: E731
    roles: dict[str, tuple[str, Harm]] = {}
    if primary is not None:
        roles[primary] = ("primary", goal_harm(primary))
    sec = [m for m in stats if m != primary and m not in guardrails] if secondary is None else list(secondary)
    for m in sec:
        if m not in roles and m not in guardrails:
            roles[m] = ("secondary", goal_harm(m))
    for m, harm in guardrails.items():
        roles.setdefault(m, ("guardrail", harm))

    # Variants: anything with data, exposures or an expected weight; SRM over all of them.
    variants: set[str] = set(weights or {}) | set(units or {})
    for per_variant in stats.values():
        variants |= set(per_variant)
    variants.add(control)
    if units is None:
        counts = {v: max((int(getattr(pv.get(v), "n", 0) or 0) for pv in stats.values()), default=0) for v in variants}
    else:
        counts = {v: int(units.get(v, 0) or 0) for v in variants}
    ordered = sorted(variants)
    srm_p = srm_p_value({v: counts[v] for v in ordered}, {v: (weights or {}).get(v, 0.0) for v in ordered}
                        if weights else None)
    srm_flag = bool(srm_p < srm_threshold)
    treatments = [v for v in ordered if v != control]
    n_guarded = sum(1 for role, _ in roles.values() if role == "guardrail") * max(len(treatments), 1)
    guard_alpha = alpha / max(n_guarded, 1)

    rows: list[dict] = []
    for metric, (role, harm) in roles.items():
        per_variant = stats.get(metric, {})
        c_stat = per_variant.get(control)
        for variant in treatments:
            t_stat = per_variant.get(variant)
            rows.append(_row(experiment_id, metric, variant, control, role, harm, c_stat, t_stat,
                             alpha=guard_alpha if role == "guardrail" else alpha,
                             sequential=sequential, tuning=sequential_tuning_parameter, power=power,
                             relative=relative))

    # Correction over primary + secondary x non-control variants; guardrails stay uncorrected vs no change.
    tested = [r for r in rows if r["metric_role"] != "guardrail"]
    for r, p_adj in zip(tested, adjust_p_values([r["p_value"] for r in tested], correction)):
        r["p_value_adjusted"] = float(p_adj)
        r["significant"] = bool(p_adj < alpha)
    results = []
    for r in rows:
        role, harm = roles[r["metric"]]
        r["margin"] = margins.get(r["metric"]) if role == "guardrail" else NAN
        if role == "guardrail":
            r["p_value_adjusted"] = r["p_value"]
        result = decision.Result(r["metric"], r["variant"], role, harm, r["rel_lift"], r["ci_low"], r["ci_high"],
                                 r["p_value_adjusted"], margins.get(r["metric"], 0.0))
        if role == "guardrail":
            r["significant"] = result.harmed
        results.append(result)

    policy = policy or decision.Policy(sequential=sequential, min_days=0, min_units_per_arm=0, alpha=alpha,
                                       srm_threshold=srm_threshold)
    if not policy.sequential and progress is None:  # no calendar given: the one look is the planned one
        policy = decision.Policy(sequential=True, min_days=0, min_units_per_arm=0, alpha=alpha,
                                 srm_threshold=srm_threshold)
    progress = progress or decision.Progress(days=0, window_end=None, units=counts)
    verdict, reason = decision.decide(results, srm_p, policy, progress)
    for r in rows:
        r.update(srm_p_value=srm_p, srm_flag=srm_flag, decision=verdict, decision_reason=reason)
    return [{k: r[k] for k in READOUT_COLUMNS + EXTRA_COLUMNS} for r in rows]


def _row(experiment_id, metric, variant, control, role, harm, c_stat, t_stat, *, alpha, sequential, tuning,
         power, relative: Relative = "fieller") -> dict:  # noqa: C901
    kw = dict(alpha=alpha, sequential=sequential, sequential_tuning_parameter=tuning, relative=relative)
    if c_stat is None or t_stat is None:
        cmp = _empty_comparison(c_stat, t_stat, "two-sided", sequential, "missing arm")
        ci = abs_ci = (NAN, NAN)
        ci_level = 1 - alpha
    elif role == "guardrail":
        # p for harm; each bound from a one-sided test at alpha, so the harm-side bound agrees with `significant`.
        up = compare(c_stat, t_stat, alternative="greater", **kw)  # lower bounds, p for "increase"
        down = compare(c_stat, t_stat, alternative="less", **kw)  # upper bounds, p for "decrease"
        cmp = up if harm == "increase" else down
        ci, abs_ci = (up.ci_low, down.ci_high), (up.abs_ci_low, down.abs_ci_high)
        ci_level = 1 - 2 * alpha
    else:
        cmp = compare(c_stat, t_stat, alternative="two-sided", **kw)
        ci, abs_ci = (cmp.ci_low, cmp.ci_high), (cmp.abs_ci_low, cmp.abs_ci_high)
        ci_level = 1 - alpha
    mde = NAN
    m = moments(c_stat, t_stat) if c_stat is not None and t_stat is not None else None
    if m is not None and m.n_a >= 2 and m.n_b >= 2:
        # the MDE of the test the row runs: one-sided at the Bonferroni level for a guardrail
        binary = isinstance(c_stat, Proportion) or (isinstance(c_stat, Cuped) and c_stat.proportion)
        mde = mde_relative(m.unadjusted_mean_a, m.var_a, m.n_a, m.var_b, m.n_b, alpha=alpha, power=power,
                           sequential_tuning_parameter=tuning if sequential else None,
                           two_sided=role != "guardrail", relative=relative, proportion=binary)
    return {
        "experiment_id": experiment_id, "metric": metric, "variant": variant, "control_variant": control,
        "is_guardrail": role == "guardrail", "metric_role": role, "units": int(cmp.units),
        "control_units": int(cmp.control_units), "mean": float(cmp.mean), "control_mean": float(cmp.control_mean),
        "abs_lift": float(cmp.abs_lift), "rel_lift": float(cmp.rel_lift), "ci_low": float(ci[0]),
        "ci_high": float(ci[1]), "abs_ci_low": float(abs_ci[0]), "abs_ci_high": float(abs_ci[1]),
        "abs_p_value": float(cmp.abs_p_value), "ci_level": float(ci_level), "p_value": float(cmp.p_value),
        "p_value_adjusted": NAN, "significant": False, "mde": float(mde),
    }

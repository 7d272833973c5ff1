"""Tests on pairs of sufficient statistics (gbstats models/tests.py, frequentist/tests.py): the pairwise moments,
Welch t-tests and asymptotic confidence sequences on the absolute lift, the relative lift's interval (Fieller's by
default; the log scale or gbstats' delta method on request), SRM and multiple-testing corrections.

Nothing raises on data-shaped problems (too few units, zero variance, zero control mean, missing arms): those
give NaN estimates and an `error`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from aiso_pipeline.stats.statistics import (NAN, Cuped, CupedRatio, Ratio, SampleMean, Stat, cuped_ratio_theta,
                                            cuped_theta, variance_of_ratios)

Alternative = Literal["two-sided", "greater", "less"]
Relative = Literal["fieller", "log", "delta"]

DEFAULT_ALPHA = 0.05
DEFAULT_SRM_THRESHOLD = 0.001
DEFAULT_SEQUENTIAL_TUNING = 5000.0

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

    A CUPED arm paired with an unadjusted one is compared on the post-period only; so is a pair without
    pre-period variation (theta 0), as gbstats does.
    """
    a, b = control, treatment
    if isinstance(a, CupedRatio) or isinstance(b, CupedRatio):
        if isinstance(a, CupedRatio) and isinstance(b, CupedRatio):
            theta = cuped_ratio_theta(a, b)
            if abs(theta) >= 1e-8:
                return Moments(
                    a.n, b.n, a.adjusted_mean(theta), b.adjusted_mean(theta), a.mean, b.mean,
                    a.adjusted_variance(theta), b.adjusted_variance(theta),
                    _cuped_ratio_relative_variance(a, b, theta), theta,
                )
        a, b = (a.post if isinstance(a, CupedRatio) else a), (b.post if isinstance(b, CupedRatio) else b)
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


def _cuped_ratio_relative_variance(a: CupedRatio, b: CupedRatio, theta: float) -> float:
    # gbstats models/tests.frequentist_variance_relative_cuped_ratio: the delta method for
    # (adj_b - adj_a) / |post_a| through both arms' 4 x 4 covariance matrices.
    base, d_a = a.mean, a.d_sum / a.n
    if not np.isfinite(base) or base == 0 or d_a == 0:
        return NAN
    g_abs, den = b.adjusted_mean(theta) - a.adjusted_mean(theta), abs(base)
    m_a = a.m_sum / a.n
    nabla_a = np.array([-(den + g_abs) / d_a / den**2, m_a * (den + g_abs) / d_a**2 / den**2, 0.0, 0.0])
    nabla_a[2:] = -a.nabla(theta)[2:] / den
    nabla_b = b.nabla(theta) / den
    return float(nabla_a @ a._lambda() @ nabla_a / a.n + nabla_b @ b._lambda() @ nabla_b / b.n)


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
        return s.mean if isinstance(s, (SampleMean, Ratio, Cuped, CupedRatio)) else NAN

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



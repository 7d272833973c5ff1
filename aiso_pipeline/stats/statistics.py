"""Sufficient statistics: one per variant and metric, built from the sums SQL pushes down (gbstats
models/statistics.py). Their means, per-unit variances and CUPED's theta; no tests here (stats.tests)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NAN = float("nan")


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


def _covariance(n: float, sa: float, sb: float, sab: float, proportions: bool) -> float:
    # gbstats compute_covariance: two proportions divide by n, as their p(1 - p) variances do.
    if proportions:
        return sab / n - sa * sb / n**2 if n >= 2 else NAN
    return _sample_covariance(n, sa, sb, sab)


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
        return _covariance(self.n, self.sum, self.pre_sum, self.post_pre_sum_of_products, self.proportion)

    def adjusted_mean(self, theta: float) -> float:
        return self.post.mean - theta * self.pre.mean

    def adjusted_variance(self, theta: float) -> float:
        """Per-unit variance of Y - theta * X (gbstats RegressionAdjustedStatistic.variance)."""
        if self.n < 2:
            return NAN
        return self.post.variance + theta**2 * self.pre.variance - 2 * theta * self.covariance



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
    kind = Proportion if control.proportion and treatment.proportion else SampleMean
    post = kind(n, control.sum + treatment.sum, control.sum_squares + treatment.sum_squares)
    pre = kind(n, control.pre_sum + treatment.pre_sum, control.pre_sum_squares + treatment.pre_sum_squares)
    if not (pre.variance > 0 and post.variance > 0):
        return 0.0
    cov = _covariance(n, post.sum, pre.sum, control.post_pre_sum_of_products + treatment.post_pre_sum_of_products,
                      kind is Proportion)
    return float(cov / pre.variance)


@dataclass(frozen=True)
class CupedRatio:
    """A ratio metric with the same ratio over the pre-exposure period, for CUPED on ratios (gbstats
    RegressionAdjustedRatioStatistic): numerator m and denominator d per unit, post and pre, with the sums of
    products the 4 x 4 covariance of (m_post, d_post, m_pre, d_pre) needs. The adjusted estimate is
    M_post / D_post - theta x M_pre / D_pre; its variance is the delta method's through that 4 x 4 matrix."""

    n: int
    m_sum: float
    m_sum_squares: float
    d_sum: float
    d_sum_squares: float
    m_pre_sum: float
    m_pre_sum_squares: float
    d_pre_sum: float
    d_pre_sum_squares: float
    m_m_pre: float  # sum over units of m_post x m_pre
    d_d_pre: float
    m_pre_d_pre: float
    m_d: float  # m_post x d_post
    m_d_pre: float  # m_post x d_pre
    m_pre_d: float  # m_pre x d_post

    __post_init__ = _coerce_fields

    @property
    def post(self) -> Ratio:
        return Ratio(self.n, self.m_sum, self.m_sum_squares, self.d_sum, self.d_sum_squares, self.m_d)

    @property
    def pre(self) -> Ratio:
        return Ratio(self.n, self.m_pre_sum, self.m_pre_sum_squares, self.d_pre_sum, self.d_pre_sum_squares,
                     self.m_pre_d_pre)

    @property
    def mean(self) -> float:
        """The unadjusted post-period ratio (what gets reported)."""
        return self.post.mean

    @property
    def has_pre(self) -> bool:
        """The pre-period ratio exists (some pre-period denominator)."""
        return self.d_pre_sum != 0

    def _means(self) -> np.ndarray:
        return np.array([self.m_sum, self.d_sum, self.m_pre_sum, self.d_pre_sum]) / self.n

    def _lambda(self) -> np.ndarray:
        """Per-unit covariance matrix of (m_post, d_post, m_pre, d_pre) (gbstats lambda_matrix)."""
        n, s = self.n, (self.m_sum, self.d_sum, self.m_pre_sum, self.d_pre_sum)
        ss = (self.m_sum_squares, self.d_sum_squares, self.m_pre_sum_squares, self.d_pre_sum_squares)
        prod = {(0, 1): self.m_d, (0, 2): self.m_m_pre, (0, 3): self.m_d_pre, (1, 2): self.m_pre_d,
                (1, 3): self.d_d_pre, (2, 3): self.m_pre_d_pre}
        out = np.empty((4, 4))
        for i in range(4):
            out[i, i] = _sample_variance(n, s[i], ss[i])
        for (i, j), p in prod.items():
            out[i, j] = out[j, i] = _sample_covariance(n, s[i], s[j], p)
        return out

    def nabla(self, theta: float) -> np.ndarray:
        """Gradient of M_post / D_post - theta M_pre / D_pre in the four means (gbstats nabla)."""
        m, d, mp, dp = self._means()
        if d == 0 or dp == 0:
            return np.zeros(4)
        return np.array([1 / d, -m / d**2, -theta / dp, theta * mp / dp**2])

    def adjusted_mean(self, theta: float) -> float:
        return self.post.mean - theta * self.pre.mean

    def adjusted_variance(self, theta: float) -> float:
        """Per-unit variance of the adjusted ratio (divide by n for the estimate's)."""
        if self.n < 2:
            return NAN
        g = self.nabla(theta)
        return float(g @ self._lambda() @ g)

    def pre_moments(self) -> tuple[float, float]:
        """(Var of the pre ratio, -Cov(post ratio, pre ratio)), per unit: gbstats' var_pre and covariance at
        theta = 1, from which theta is pooled."""
        g, lam = self.nabla(1.0), self._lambda()
        return float(g[2:] @ lam[2:, 2:] @ g[2:]), float(g[2:] @ lam[2:, :2] @ g[:2])


def cuped_ratio_theta(control: CupedRatio, treatment: CupedRatio) -> float:
    """theta for a ratio metric (gbstats compute_theta_regression_adjusted_ratio): -(cov_a + cov_b) / (var_a + var_b)
    over both arms' per-unit pre-ratio moments. 0 when neither arm has pre-period variation."""
    if control.n < 2 or treatment.n < 2 or not (control.has_pre and treatment.has_pre):
        return 0.0
    (var_a, cov_a), (var_b, cov_b) = control.pre_moments(), treatment.pre_moments()
    if not (np.isfinite(var_a + var_b) and var_a + var_b > 0):
        return 0.0
    return float(-(cov_a + cov_b) / (var_a + var_b))


Stat = SampleMean | Ratio | Cuped | CupedRatio


def is_proportion(stat) -> bool:
    """A 0/1 metric: its variance at another mean is that mean's p(1 - p) (power)."""
    return isinstance(stat, Proportion) or (isinstance(stat, Cuped) and stat.proportion)


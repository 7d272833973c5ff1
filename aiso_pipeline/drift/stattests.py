"""Evidently 0.7.23's default drift tests, computed from small aggregates instead of raw columns.

Each function reproduces the corresponding function in evidently/legacy/calculations/stattests/ (file named in the
docstring) on the same data: categorical tests from per-category counts, the normed Wasserstein distance from
per-value (or per-grid-bucket) counts, Kolmogorov-Smirnov from the values or from the statistic D.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import stats
from scipy.spatial import distance


def wasserstein_normed(ref_x: np.ndarray, ref_n: np.ndarray, cur_x: np.ndarray, cur_n: np.ndarray,
                       norm: float) -> float:
    """W1(reference, current) / norm from value -> count histograms (wasserstein_distance_norm.py).

    W1 = integral |F - G| dx, and both empirical CDFs are constant between consecutive observed values, so the sum
    over the merged sorted values of |F - G| * (gap to the next value) is exact for the given values. Evidently's
    norm is max(np.std(reference), 0.001) (population std).
    """
    x = np.concatenate([ref_x, cur_x]).astype(np.float64)
    w_ref = np.concatenate([ref_n, np.zeros(len(cur_x))]).astype(np.float64)
    w_cur = np.concatenate([np.zeros(len(ref_x)), cur_n]).astype(np.float64)
    order = np.argsort(x, kind="stable")
    x, w_ref, w_cur = x[order], w_ref[order], w_cur[order]
    f = np.cumsum(w_ref) / w_ref.sum()
    g = np.cumsum(w_cur) / w_cur.sum()
    w1 = float(np.sum(np.abs(f[:-1] - g[:-1]) * np.diff(x)))
    return w1 / norm


def ks_from_values(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(D, p) exactly as Evidently's ks_stattest.py: scipy.stats.ks_2samp, two-sided, method 'auto'."""
    res = stats.ks_2samp(ref, cur)
    return float(res.statistic), float(res.pvalue)


def ks_asymptotic_p(d: float, n_ref: int, n_cur: int) -> float:
    """The p-value scipy's ks_2samp reports in its 'asymp' mode (method 'auto' with more than 10000 values on a
    side): kstwo.sf(D, round(m*n / (m+n))), clipped to [0, 1] (scipy/stats/_stats_py.py, ks_2samp)."""
    m, n = sorted([float(n_ref), float(n_cur)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.distributions.kstwo.sf(d, max(np.round(en), 1)), 0, 1))


def _keys(ref: Mapping, cur: Mapping) -> list:
    return list(set(ref) | set(cur))


def chisquare_from_counts(ref: Mapping, cur: Mapping) -> tuple[float, float]:
    """(chi2, p) as Evidently's chisquare_stattest.py: expected = reference counts scaled to the current total.

    A category absent from the reference has expected count 0: the statistic is infinite and p = 0 (drift), as in
    Evidently, which hands the same vectors to scipy.stats.chisquare.
    """
    keys = _keys(ref, cur)
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    k_norm = n_cur / n_ref
    f_exp = [ref.get(k, 0) * k_norm for k in keys]
    f_obs = [cur.get(k, 0) for k in keys]
    with np.errstate(divide="ignore", invalid="ignore"):
        res = stats.chisquare(f_obs, f_exp)
    return float(res.statistic), float(res.pvalue)


def z_from_counts(ref: Mapping, cur: Mapping) -> tuple[float, float]:
    """(z, p) as Evidently's z_stattest.py: two-proportion z test of "value != smallest value", two-sided.

    Evidently returns p = 1 when both sides hold the same single value.
    """
    if len(ref) == 1 and len(cur) == 1 and next(iter(ref)) == next(iter(cur)):
        return 0.0, 1.0
    first = sorted(_keys(ref, cur))[0]
    n1, n2 = sum(ref.values()), sum(cur.values())
    p1 = float(n1 - ref.get(first, 0)) / n1
    p2 = float(n2 - cur.get(first, 0)) / n2
    pooled = float(p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(z), float(2 * (1 - stats.norm.cdf(np.abs(z))))


def jensenshannon_from_counts(ref: Mapping, cur: Mapping) -> float:
    """Jensen-Shannon distance as Evidently's jensenshannon.py for columns it does not bin (categorical columns and
    numeric ones with <= 20 reference values, which covers every column the default selection sends here):
    shares per category over the union of both sides, zeros kept (feel_zeroes=False), natural log."""
    keys = _keys(ref, cur)
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    p = np.array([ref.get(k, 0) / n_ref for k in keys])
    q = np.array([cur.get(k, 0) / n_cur for k in keys])
    return float(distance.jensenshannon(p, q, None))


# ---------------------------------------------------------------------------------------------------------------
# Is the shift more than sampling noise? (for alerting, not Evidently's decision)


def homogeneity_p(ref: Mapping, cur: Mapping, deff_ref: float = 1.0, deff_cur: float = 1.0) -> float:
    """p-value of Pearson's chi-square test that both samples come from one categorical distribution (a 2 x k
    contingency table; scipy.stats.chi2_contingency). Unlike a goodness-of-fit test against the reference shares,
    it accounts for the reference being a sample too, so a small reference does not look like drift. Each side's
    counts are divided by its design effect (rows per independent unit: calls of one user are alike), the
    first-order Rao-Scott correction; categories are kept as they are (a category new in the current day is what
    drift looks like)."""
    keys = [k for k in _keys(ref, cur) if ref.get(k, 0) + cur.get(k, 0) > 0]
    if len(keys) < 2 or not sum(ref.values()) or not sum(cur.values()):
        return 1.0
    table = np.array([[ref.get(k, 0) / deff_ref for k in keys], [cur.get(k, 0) / deff_cur for k in keys]],
                     dtype=np.float64)
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def ks_from_counts(ref_x: np.ndarray, ref_n: np.ndarray, cur_x: np.ndarray, cur_n: np.ndarray,
                   deff_ref: float = 1.0, deff_cur: float = 1.0) -> tuple[float, float]:
    """(D, asymptotic p) of the two-sample Kolmogorov-Smirnov test from value -> count histograms, each side's size
    divided by its design effect (rows per independent unit). On bucketed values D is the largest CDF gap at the
    bucket edges, never more than the gap on the raw values, so p errs on the side of no alert; ties make the
    asymptotic p conservative too."""
    x = np.concatenate([ref_x, cur_x]).astype(np.float64)
    w_ref = np.concatenate([ref_n, np.zeros(len(cur_x))]).astype(np.float64)
    w_cur = np.concatenate([np.zeros(len(ref_x)), cur_n]).astype(np.float64)
    order = np.argsort(x, kind="stable")
    x, w_ref, w_cur = x[order], w_ref[order], w_cur[order]
    last = np.r_[x[1:] != x[:-1], True]  # the CDFs at each distinct value, after all its ties
    f = (np.cumsum(w_ref) / w_ref.sum())[last]
    g = (np.cumsum(w_cur) / w_cur.sum())[last]
    d = float(np.max(np.abs(f - g))) if len(f) else 0.0
    return d, ks_asymptotic_p(d, w_ref.sum() / deff_ref, w_cur.sum() / deff_cur)

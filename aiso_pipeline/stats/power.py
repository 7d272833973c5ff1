"""Power: the smallest relative lift the test actually run detects (its MDE), and how many more days of exposure
would bring it to a target (GrowthBook's power.ts, adapted to the tests in stats.tests)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from aiso_pipeline.stats.statistics import NAN
from aiso_pipeline.stats.tests import DEFAULT_ALPHA, DEFAULT_SEQUENTIAL_TUNING, Relative, multiplier

DEFAULT_POWER = 0.8


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




def days_to_mde(
    target: float,
    days: float,
    control_mean: float,
    control_variance: float,
    control_n: float,
    treatment_variance: float,
    treatment_n: float,
    *,
    max_days: float = 3650.0,
    **mde_kw,
) -> float:
    """Whole days of further exposure, at the rate seen so far (units per arm / `days`), until the MDE of the same
    test (`mde_kw` as for mde_relative) falls to `target`: 0 when it already has; inf beyond `max_days`; NaN
    when nothing is known yet. Per-unit variances are taken as they are now."""
    vals = (target, days, control_n, treatment_n)
    if not all(v is not None and np.isfinite(v) for v in vals) or target <= 0 or days <= 0 or control_n <= 0 \
            or treatment_n <= 0:
        return NAN

    def mde_after(extra: float) -> float:
        scale = (days + extra) / days
        return mde_relative(control_mean, control_variance, control_n * scale, treatment_variance,
                            treatment_n * scale, **mde_kw)

    now, far = mde_after(0.0), mde_after(max_days)
    if np.isfinite(now) and now <= target:
        return 0.0
    if not np.isfinite(far):  # no MDE even then: zero variance, a zero control mean
        return NAN
    if far > target:
        return math.inf
    lo, hi = 0, int(max_days)  # whole days; the MDE falls as exposure grows: the smallest day that reaches it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        m = mde_after(float(mid))
        lo, hi = (lo, mid) if np.isfinite(m) and m <= target else (mid, hi)
    return float(hi)

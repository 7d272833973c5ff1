"""One experiment's readout in one call: every metric x non-control variant compared with the control (stats.tests),
corrected for multiplicity, with its MDE (stats.power), and the experiment's decision (stats.decision).

The rows are statistics, named as such; which of them the warehouse stores, and in what columns, is the caller's
business (aiso_pipeline.experiments.engine)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from aiso_pipeline.stats import decision
from aiso_pipeline.stats.power import DEFAULT_POWER, days_to_mde, mde_relative
from aiso_pipeline.stats.statistics import NAN, Stat, is_proportion
from aiso_pipeline.stats.tests import (DEFAULT_ALPHA, DEFAULT_SEQUENTIAL_TUNING, DEFAULT_SRM_THRESHOLD, Relative,
                                       _empty_comparison, adjust_p_values, compare, moments, srm_p_value)

Harm = decision.Harm


@dataclass(frozen=True)
class MetricReadout:
    """One metric x non-control variant. ci_low / ci_high bound rel_lift at ci_level (a guardrail's are its two
    one-sided bounds at its Bonferroni level); abs_* are the same on the absolute lift."""

    experiment_id: str
    metric: str
    variant: str
    control_variant: str
    metric_role: decision.Role
    units: int
    control_units: int
    mean: float
    control_mean: float
    abs_lift: float
    rel_lift: float
    ci_low: float
    ci_high: float
    abs_ci_low: float
    abs_ci_high: float
    abs_p_value: float
    ci_level: float
    p_value: float
    p_value_adjusted: float  # Holm / BH over primary + secondaries; a guardrail's own (vs no change)
    significant: bool  # a guardrail: harmed beyond its margin
    mde: float
    days_to_target_mde: float  # further days at the current exposure rate until mde <= target (0: reached; inf)
    margin: float  # a guardrail's non-inferiority margin (NaN otherwise)
    theta: float  # CUPED's adjustment (0: none)

    @property
    def is_guardrail(self) -> bool:
        return self.metric_role == "guardrail"


@dataclass(frozen=True)
class Readout:
    """An experiment's rows (primary, secondaries, guardrails), its SRM test and its decision."""

    experiment_id: str
    control: str
    rows: list[MetricReadout]
    srm_p_value: float
    srm_flag: bool
    decision: str
    decision_reason: str

    def records(self) -> list[dict]:
        """One flat dict per row: the row's statistics with the experiment's SRM test and decision."""
        return [dict(vars(r), is_guardrail=r.is_guardrail, srm_p_value=self.srm_p_value, srm_flag=self.srm_flag,
                     decision=self.decision, decision_reason=self.decision_reason) for r in self.rows]


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
    target_mde: float | None = None,
) -> Readout:
    """The readout of one experiment.

    stats: metric -> variant -> SampleMean | Proportion | Ratio | Cuped | CupedRatio. Roles: `primary`; `secondary` (default: every
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
    `target_mde` (relative): each row's days_to_target_mde, the further days of exposure at the rate seen over
    `progress.days` until the row's own MDE reaches it (power.days_to_mde; NaN without a target or a calendar).
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
                             relative=relative, target_mde=target_mde, days=progress.days if progress else 0))

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
    return Readout(experiment_id, control, [MetricReadout(**r) for r in rows], srm_p, srm_flag, verdict, reason)


def _row(experiment_id, metric, variant, control, role, harm, c_stat, t_stat, *, alpha, sequential, tuning,
         power, relative: Relative = "fieller", target_mde: float | None = None, days: float = 0) -> dict:  # noqa: C901
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
    mde = days_needed = NAN
    m = moments(c_stat, t_stat) if c_stat is not None and t_stat is not None else None
    if m is not None and m.n_a >= 2 and m.n_b >= 2:
        # the MDE of the test the row runs: one-sided at the Bonferroni level for a guardrail
        mde_kw = dict(alpha=alpha, power=power, sequential_tuning_parameter=tuning if sequential else None,
                      two_sided=role != "guardrail", relative=relative if m.theta == 0 else "delta",
                      proportion=is_proportion(c_stat))
        mde = mde_relative(m.unadjusted_mean_a, m.var_a, m.n_a, m.var_b, m.n_b, **mde_kw)
        if target_mde is not None and days > 0:
            days_needed = days_to_mde(target_mde, days, m.unadjusted_mean_a, m.var_a, m.n_a, m.var_b, m.n_b,
                                      **mde_kw)
    return {
        "experiment_id": experiment_id, "metric": metric, "variant": variant, "control_variant": control,
        "metric_role": role, "units": int(cmp.units), "theta": float(cmp.theta),
        "control_units": int(cmp.control_units), "mean": float(cmp.mean), "control_mean": float(cmp.control_mean),
        "abs_lift": float(cmp.abs_lift), "rel_lift": float(cmp.rel_lift), "ci_low": float(ci[0]),
        "ci_high": float(ci[1]), "abs_ci_low": float(abs_ci[0]), "abs_ci_high": float(abs_ci[1]),
        "abs_p_value": float(cmp.abs_p_value), "ci_level": float(ci_level), "p_value": float(cmp.p_value),
        "p_value_adjusted": NAN, "significant": False, "mde": float(mde),
        "days_to_target_mde": float(days_needed),
    }


"""The decision on one experiment: ship / stop / keep_running / invalid, and one sentence saying why.

Safe under daily peeking by default (CONTRACT section 6). A readout is recomputed every day and someone looks at
every one, so a decision may only come from a test whose error rate holds for every look:
- sequential (the default): the asymptotic confidence sequences of `stats.tests`, valid at any number of
  looks, and only after a burn-in (`min_days` of data and `min_units_per_arm` users in every arm: the normal
  approximation behind them is poor on a few days of heavy-tailed data);
- fixed horizon: a classical test is valid at one planned look, so it decides only from the day the registry's
  planned `end` or `sample_size` (users per arm) is reached; before that it keeps running, whatever it shows.
Guardrails are tested against a non-inferiority margin: `stop` when harm beyond the margin is significant (one
sided, Bonferroni over guardrails x variants, so all of them together keep the false `stop` rate at `alpha`);
harm that is not significant beyond the margin never stops it (it keeps running, and the reason names it); `ship`
needs the primary significantly better. Pure Python: no warehouse names here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Iterable, Literal, Mapping

DEFAULT_MIN_DAYS = 7  # a week of data: the confidence sequences' normal approximation, and weekly seasonality
DEFAULT_MIN_UNITS_PER_ARM = 100
DEFAULT_MARGIN = 0.02  # guardrails: harm up to 2% (relative) is tolerated, beyond it stops the experiment

Role = Literal["primary", "secondary", "guardrail"]
Harm = Literal["increase", "decrease"]


@dataclass(frozen=True)
class Policy:
    """When a readout may decide."""
    sequential: bool = True
    min_days: int = DEFAULT_MIN_DAYS
    min_units_per_arm: int = DEFAULT_MIN_UNITS_PER_ARM
    planned_end: date | None = None  # fixed horizon: decide from this day
    planned_units_per_arm: int | None = None  # fixed horizon: or once every arm has this many users
    alpha: float = 0.05
    srm_threshold: float = 0.001


@dataclass(frozen=True)
class Progress:
    """How far the experiment has come as of the readout."""
    days: int  # days of data, start .. window end
    window_end: date
    units: Mapping[str, int]  # users per arm


@dataclass(frozen=True)
class Result:
    """One metric x non-control variant, as the decision sees it. ci_low / ci_high bound the relative lift (for a
    guardrail at its Bonferroni level); margin is a guardrail's relative non-inferiority margin."""
    metric: str
    variant: str
    role: Role
    harm: Harm
    lift: float
    ci_low: float
    ci_high: float
    p_value_adjusted: float
    margin: float = 0.0

    @property
    def harmed(self) -> bool:
        """Harm beyond the margin is significant (the whole interval lies past it)."""
        if self.harm == "increase":
            return _ok(self.ci_low) and self.ci_low > self.margin
        return _ok(self.ci_high) and self.ci_high < -self.margin

    @property
    def inconclusive_harm(self) -> bool:
        """The estimate is worse than the margin, but not significantly: too early to ship."""
        if not _ok(self.lift) or self.harmed:
            return False
        return self.lift > self.margin if self.harm == "increase" else self.lift < -self.margin

    def significant(self, alpha: float) -> bool:
        return _ok(self.p_value_adjusted) and self.p_value_adjusted < alpha and _ok(self.lift) and self.lift != 0

    @property
    def worse(self) -> bool:
        return (self.lift > 0) if self.harm == "increase" else (self.lift < 0)


def _ok(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _pct(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "+∞" if x > 0 else "−∞"  # an unbounded interval
    return f"{x:+.1%}" if _ok(x) else "n/a"


def _ci(r: Result) -> str:
    return f"[{_pct(r.ci_low)}, {_pct(r.ci_high)}]"


def not_ready(policy: Policy, progress: Progress) -> str | None:
    """Why the readout may not decide yet (None: it may)."""
    smallest = min(progress.units.values(), default=0)
    if policy.sequential:
        missing = []
        if progress.days < policy.min_days:
            missing.append(f"{progress.days} of {policy.min_days} days")
        if smallest < policy.min_units_per_arm:
            missing.append(f"{smallest:,} of {policy.min_units_per_arm:,} users in the smallest arm")
        if missing:
            return "burn-in: " + " and ".join(missing) + " so far"
        return None
    reached = []
    if policy.planned_end is not None and progress.window_end >= policy.planned_end:
        reached.append(f"the planned end {policy.planned_end}")
    if policy.planned_units_per_arm is not None and smallest >= policy.planned_units_per_arm:
        reached.append(f"{policy.planned_units_per_arm:,} users per arm")
    if reached:
        return None
    if policy.planned_end is None and policy.planned_units_per_arm is None:
        return ("fixed-horizon test without a planned end or sample_size: a classical test checked every day "
                "would decide by chance; set `end` or `sample_size`, or `sequential: true`")
    plan = " or ".join(filter(None, [f"its planned end {policy.planned_end}" if policy.planned_end else "",
                                     f"{policy.planned_units_per_arm:,} users per arm (smallest arm: {smallest:,})"
                                     if policy.planned_units_per_arm else ""]))
    return f"fixed-horizon test: no decision before {plan}"


def decide(results: Iterable[Result], srm_p: float, policy: Policy, progress: Progress) -> tuple[str, str]:
    """(decision, reason): invalid (SRM) > not ready (keep_running) > stop (a guardrail harmed beyond its margin,
    or the primary significantly worse) > ship (the primary significantly better) > keep_running (naming a
    guardrail whose harm is not yet significant, if any)."""
    results = list(results)
    if _ok(srm_p) and srm_p < policy.srm_threshold:
        return "invalid", (f"sample ratio mismatch (p = {srm_p:.2g} < {policy.srm_threshold:g}): the users per "
                           f"variant do not follow the weights, so no lift can be trusted; fix the assignment")
    wait = not_ready(policy, progress)
    if wait:
        return "keep_running", wait[0].upper() + wait[1:] + "."
    guardrails = [r for r in results if r.role == "guardrail"]
    primary = [r for r in results if r.role == "primary"]
    harmed = [r for r in guardrails if r.harmed]
    if harmed:
        r = harmed[0]
        return "stop", (f"Guardrail {r.metric} is worse than its {r.margin:.0%} margin for {r.variant} "
                        f"({_pct(r.lift)}, interval {_ci(r)}).")
    worse = [r for r in primary if r.significant(policy.alpha) and r.worse]
    if worse:
        r = worse[0]
        return "stop", (f"Primary {r.metric} is significantly worse for {r.variant} ({_pct(r.lift)}, adjusted p "
                        f"{r.p_value_adjusted:.2g}).")
    better = [r for r in primary if r.significant(policy.alpha) and not r.worse]
    if better:
        r = better[0]
        return "ship", (f"Primary {r.metric} is significantly better for {r.variant} ({_pct(r.lift)}, adjusted p "
                        f"{r.p_value_adjusted:.2g}) and no guardrail is harmed beyond its margin.")
    unsure = [g for g in guardrails if g.inconclusive_harm]
    if unsure:
        g = unsure[0]
        return "keep_running", (f"Guardrail {g.metric} looks worse than its {g.margin:.0%} margin for {g.variant} "
                                f"({_pct(g.lift)}, interval {_ci(g)}) but not significantly; the primary shows no "
                                f"significant difference yet.")
    if primary:
        r = primary[0]
        return "keep_running", (f"No significant difference in primary {r.metric} yet ({_pct(r.lift)}, interval "
                                f"{_ci(r)}, adjusted p {r.p_value_adjusted:.2g} over the primary and secondary "
                                f"metrics).")
    return "keep_running", "No primary metric to decide on."

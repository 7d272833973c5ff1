"""The visibility scorecard: one row per day x model (marts.scorecard) with every check of scorecard.yaml as a
figure, a target and a pass / warn / fail status, a 0-100 visibility score, and the long form
marts.scorecard_checks (value, target, status, a one-line reason per check) for cards and dashboards.

    visibility_score = 100 x sum(weight x credit) / sum(weight) over the checks that apply (credit: pass 1,
    warn 0.5, fail 0); a check whose figure does not exist that day (no experiment, no confidence) is n/a.

Figures come from the day's marts (monitoring/sql/scorecard.sql); trends compare with marts.scorecard's own
trailing 7 days, so the work grows with the day's data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml
from scipy import stats as sps

from aiso_pipeline import warehouse

HERE = Path(__file__).resolve().parent
SQL = "monitoring/sql"
TREND_DAYS = 7
NOISE_Z = 1.645  # one-sided 95%: a trend fails only when even its lower bound is past the limit
NOISE_MIN_COUNT = 30  # fewer effective counts in a day: a cost ratio too noisy to judge (relative error > 18%)
DEFAULT_MDE = 0.05  # the target lift an experiment's power is judged at when its registry sets none
CREDIT = {"pass": 1.0, "warn": 0.5, "fail": 0.0}
TREND_OF = {"cost_per_success_trend": "cost_per_success", "cost_per_conversion_trend": "cost_per_conversion",
            "latency_p95_trend": "latency_p95_ms"}
FIGURES = ("requests", "cost_usd", "join_rate", "feature_join_rate", "drift_detect_hours", "experiment_power",
           "cost_per_success", "cost_per_conversion", "latency_p95_ms", "error_rate", "fallback_rate", "ece",
           "worst_slice_gap", "open_anomalies", "cost_per_success_trend", "cost_per_conversion_trend",
           "latency_p95_trend")


@dataclass(frozen=True)
class Check:
    name: str
    better: str
    pass_at: float
    warn_at: float
    weight: float
    source: str
    subject: str | None = None  # the scorecard column naming what the figure is about (a feature, a slice)
    noise: str | None = None  # trends: the column of effective counts the figure rests on
    judged_by: str | None = None  # the column the status is judged on, when not the figure itself

    def bound(self, trend: float | None, n_day: float, n_trailing: float) -> float | None:
        """The trend's one-sided 95% lower bound: a ratio of costs over counts, each count Poisson-like, so its
        log has standard error sqrt(1/n_day + 1/n_trailing) (cost sums are nearly exact)."""
        if trend is None or n_day < NOISE_MIN_COUNT or not n_trailing > 0:
            return None
        return (1 + trend) * math.exp(-NOISE_Z * math.sqrt(1 / n_day + 1 / n_trailing)) - 1

    def status(self, value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        if self.better == "higher":
            return "pass" if value >= self.pass_at else "warn" if value >= self.warn_at else "fail"
        return "pass" if value <= self.pass_at else "warn" if value <= self.warn_at else "fail"

    def target(self) -> str:
        return f"{'≥' if self.better == 'higher' else '≤'} {_fmt(self.name, self.pass_at)}"

    def limit(self) -> str:
        """Where it fails."""
        return f"{'<' if self.better == 'higher' else '>'} {_fmt(self.name, self.warn_at)}"

    def reason(self, value, status: str, about: str | None = None, judged: float | None = None,
               n_day: float | None = None) -> str:
        if status == "n/a" and self.noise and value is not None and n_day is not None and n_day < NOISE_MIN_COUNT:
            return (f"{self.name} {_fmt(self.name, value)} not judged: {n_day:.0f} effective "
                    f"{self.noise.removesuffix('_eff')} that day, fewer than {NOISE_MIN_COUNT}")
        if status == "n/a":
            return f"{self.name}: not measured this day"
        notes = [about] if about else []
        if judged is not None and judged != value:
            notes.append(f"{'net of noise' if self.noise else 'significant slices only'}: {_fmt(self.name, judged)}")
        of = f" ({'; '.join(notes)})" if notes else ""
        if status == "pass":
            return f"{self.name} {_fmt(self.name, value)}{of} meets {self.target()}"
        side = "below" if self.better == "higher" else "above"
        limit = self.limit()
        shown = _fmt(self.name, value)
        if shown == _fmt(self.name, self.pass_at):  # 94.97% is not "95.0% below 95.0%"
            shown = _fmt(self.name, value, digits=3)
        return (f"{self.name} {shown}{of} is {side} its target {self.target()}"
                + (f" (fails at {limit})" if status == "warn" else f" and fails ({limit})"))


def _number(v) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else float(v)


def _fmt(name: str, x, digits: int = 1) -> str:
    if name in ("join_rate", "feature_join_rate", "error_rate", "fallback_rate", "experiment_power") \
            or name.endswith("_trend") or name == "worst_slice_gap":
        return f"{x:+.{digits}%}" if name.endswith("_trend") or name == "worst_slice_gap" else f"{x:.{digits}%}"
    if name == "drift_detect_hours":
        return f"{x:.1f} h"
    if name == "ece":
        return f"{x:.3f}"
    return f"{x:g}"


@cache
def checks() -> tuple[Check, ...]:
    doc = yaml.safe_load((HERE / "scorecard.yaml").read_text())["checks"]
    out = []
    for name, spec in doc.items():
        if spec["better"] not in ("higher", "lower") or name not in FIGURES:
            raise ValueError(f"monitoring/scorecard.yaml: check {name}: unknown figure or direction")
        if (spec["pass"] < spec["warn"]) if spec["better"] == "higher" else (spec["pass"] > spec["warn"]):
            raise ValueError(f"monitoring/scorecard.yaml: check {name}: pass must be on the better side of warn")
        out.append(Check(name, spec["better"], float(spec["pass"]), float(spec["warn"]), float(spec["weight"]),
                         spec["source"], spec.get("subject"), spec.get("noise"), spec.get("judged_by")))
    return tuple(out)


def score(statuses: dict[str, str]) -> float | None:
    """0-100: the weighted share of credit over the checks that apply; None when none applies."""
    weights = {c.name: c.weight for c in checks()}
    applied = [(weights[k], CREDIT[s]) for k, s in statuses.items() if s in CREDIT]
    total = sum(w for w, _ in applied)
    return 100.0 * sum(w * c for w, c in applied) / total if total else None


def power_at(target: float, mde: float, alpha: float, power: float = 0.8) -> float:
    """Power of a two-sided test at `alpha` against a relative lift `target`, given the lift it detects with
    `power` (its MDE): the normal approximation, standard error = MDE / (z_(1-alpha/2) + z_power)."""
    if not (mde > 0 and math.isfinite(mde)):
        return 0.0
    z_a = sps.norm.ppf(1 - alpha / 2)
    se = mde / (z_a + sps.norm.ppf(power))
    return float(sps.norm.cdf(target / se - z_a))


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    warehouse.run(con, f"{SQL}/scorecard_schema.sql")


def _present(con) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables").fetchall()}


def build(con: duckdb.DuckDBPyConnection, dt: str) -> pd.DataFrame:
    """Replace partition `dt` of marts.scorecard and marts.scorecard_checks; returns the day's rows."""
    from aiso_pipeline import anomalies, experiments, monitoring, outcomes

    ensure_tables(con)
    outcomes.ensure_tables(con)
    monitoring.ensure_tables(con)
    anomalies.ensure_table(con)
    experiments.ensure_tables(con)
    try:
        warehouse.run(con, f"{SQL}/scorecard.sql", dt=dt)
        fig = con.execute("SELECT * FROM _sc_figures ORDER BY model").df()
        xp = con.execute("SELECT * FROM _sc_experiments").df()
        history = con.execute(
            f"""SELECT model, {', '.join(TREND_OF.values())}, successes_eff, conversions_eff FROM marts.scorecard
                WHERE dt BETWEEN ?::DATE - {TREND_DAYS} AND ?::DATE - 1""", [dt, dt]).df()
    except BaseException:
        for table in ("_sc_figures", "_sc_experiments", "_sc_model_experiments"):
            con.execute(f"DROP TABLE IF EXISTS {table}")
        raise
    con.execute("DROP TABLE IF EXISTS _sc_figures")
    con.execute("DROP TABLE IF EXISTS _sc_experiments")
    power, weakest = {}, {}
    for model, g in xp.groupby("model"):
        power[model], weakest[model] = min(
            (power_at(t if t == t and t else DEFAULT_MDE, m, a if a == a else 0.05), x)
            for m, t, a, x in zip(g.mde, g.target_mde, g.alpha, g.experiment_id))
    fig["experiment_power"] = fig.model.map(power).astype(float)
    fig["underpowered_experiment"] = fig.model.map(weakest)
    medians = history.groupby("model").median(numeric_only=True)
    trailing = history.groupby("model")[["successes_eff", "conversions_eff"]].sum()
    for trend, base in TREND_OF.items():
        ref = fig.model.map(medians[base]) if base in medians else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            fig[trend] = (fig[base] / ref - 1).astype(float)
    long_rows = []
    for i, row in fig.iterrows():
        statuses = {}
        for c in checks():
            value = _number(row[c.name])
            judged, n_day = value, None
            if c.judged_by and value is not None:
                judged = _number(row[c.judged_by])
            if c.noise:
                n_day = _number(row[c.noise]) or 0.0
                n_trailing = trailing[c.noise].get(row.model, 0.0) if c.noise in trailing else 0.0
                judged = c.bound(value, n_day, float(n_trailing))
            status = c.status(judged)
            statuses[c.name] = status
            fig.loc[i, f"{c.name}_status"] = status
            about = row[c.subject] if c.subject else None
            long_rows.append({"dt": dt, "model": row.model, "check_name": c.name, "value": value,
                              "target": c.target(), "status": status, "weight": c.weight,
                              "reason": c.reason(value, status, about if isinstance(about, str) else None,
                                                 judged, n_day)})
        fig.loc[i, "visibility_score"] = score(statuses)
        fails = [c.name for c in checks() if statuses[c.name] == "fail"]
        fig.loc[i, "failing"] = ", ".join(fails)
    fig["dt"] = pd.Timestamp(dt).date()
    checks_df = pd.DataFrame(long_rows, columns=["dt", "model", "check_name", "value", "target", "status", "weight",
                                                 "reason"])
    checks_df["dt"] = pd.Timestamp(dt).date()
    con.register("_sc_rows", fig)
    con.register("_sc_checks", checks_df)
    try:
        with warehouse.transaction(con, writes=[("marts.scorecard", dt), ("marts.scorecard_checks", dt),
                                                ("marts.model_experiments", dt)]):
            for table in ("marts.scorecard", "marts.scorecard_checks", "marts.model_experiments"):
                con.execute(f"DELETE FROM {table} WHERE dt = ?", [dt])
            con.execute("INSERT INTO marts.model_experiments BY NAME SELECT * FROM _sc_model_experiments")
            con.execute("INSERT INTO marts.scorecard BY NAME SELECT *, current_timestamp AS computed_at FROM _sc_rows")
            con.execute("INSERT INTO marts.scorecard_checks BY NAME SELECT * FROM _sc_checks")
    finally:
        con.unregister("_sc_rows")
        con.unregister("_sc_checks")
        con.execute("DROP TABLE IF EXISTS _sc_model_experiments")
    return fig

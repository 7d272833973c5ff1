"""Experiment readouts for one as-of day: marts.joined_outcomes → sufficient statistics in DuckDB → stats.analyze().

Pipeline (CONTRACT section 6), every step but the statistics in SQL (sql/*.sql):

1. discover.sql: experiments seen on inferences up to the as-of day (first exposure, variants, features); with
   the registry this gives each experiment's window [start, window_end = min(dt, end)] and metric scope.
2. exposures.sql: a user's first tagged inference in the window is the exposure; users seen in more than one
   variant are excluded and counted.
3. user_metrics.sql: per exposed user, the post-exposure measures and the same measures over the 14 days before
   exposure (CUPED), from the user's inferences on the experiment's features.
4. variant_stats.sql: per experiment × variant, n / sums / sums of squares / cross-products (after optional caps).
   Only these few rows reach Python. Steps 3-4 and winsorize.sql are rendered from experiments/metrics.yaml.
5. aiso_pipeline.stats.analyze() per experiment: lifts, CIs, Holm/BH, guardrails, SRM, MDE, decision.
6. write.sql: the as-of day's rows of marts.experiment_readouts and this asset's rows of quality.check_results are
   replaced in one transaction.

Cost: steps 2-3 read every inference of every running experiment's window (plus 14 days before it), so one
as-of day costs O(rows since the oldest running experiment's start), growing with the experiment window; step 1
reads four columns of all history up to the day.

Choices (README material):
- Metric rows: the user's inferences on the experiment's features (registry `feature`, else the features its
  tagged inferences were seen on; `scope: user` takes all of the user's inferences), from the exposure to the end
  of window_end. Every exposed user counts, with zeros when they have no such rows.
- Weighting: request-level quantities are weighted by `weight` (1/sample_rate): cost_per_user is the user's
  estimated total cost, and success_rate / error_rate / latency_ms are weighted ratios over requests (delta
  method over users). User counts, conversion and revenue are not weighted: units are users, and conversions /
  revenue come from unsampled product events.
- CUPED: the same per-user measures over the 14 days before each user's exposure; users without history there
  have pre = 0 (as GrowthBook), and theta is pooled over both arms, so the estimate stays unbiased. Ratio metrics
  are adjusted by their pre-period ratio (gbstats' regression-adjusted ratio).
- Caps: `cap` (absolute) and `winsorize` (pooled quantile over the experiment's users) on per-user metrics; the
  pre-period value is capped at the same level.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import duckdb
import pyarrow as pa

from aiso_pipeline import warehouse
from aiso_pipeline.experiments.metrics import catalog
from aiso_pipeline.experiments.registry import CUPED_DAYS, ExperimentConfig, control_of, default_config
from aiso_pipeline import stats
from aiso_pipeline.stats import decision
from aiso_pipeline.text import md_text

SQL = "experiments/sql/"
ASSET = "marts.experiment_readouts"
TEMP_TABLES = ("_xp_config", "_xp_scope", "_xp_exposures", "_xp_units", "_xp_exclusions", "_xp_user")
MIXED_CHECK = "experiment_mixed_variant_users"
SRM_CHECK = "experiment_sample_ratio_mismatch"
# marts.experiment_readouts as written (schema.sql, minus computed_at), with Arrow types for staging.
ROW_SCHEMA = pa.schema([
    ("dt", pa.date32()), ("experiment_id", pa.string()), ("metric", pa.string()), ("variant", pa.string()),
    ("control_variant", pa.string()), ("is_guardrail", pa.bool_()), ("units", pa.int64()), ("mean", pa.float64()),
    ("control_mean", pa.float64()), ("abs_lift", pa.float64()), ("rel_lift", pa.float64()),
    ("ci_low", pa.float64()), ("ci_high", pa.float64()), ("p_value", pa.float64()),
    ("p_value_adjusted", pa.float64()), ("significant", pa.bool_()), ("srm_p_value", pa.float64()),
    ("srm_flag", pa.bool_()), ("mde", pa.float64()), ("decision", pa.string()), ("metric_role", pa.string()),
    ("control_units", pa.int64()), ("abs_ci_low", pa.float64()), ("abs_ci_high", pa.float64()),
    ("abs_p_value", pa.float64()), ("ci_level", pa.float64()), ("target_mde", pa.float64()),
    ("cuped_theta", pa.float64()), ("alpha", pa.float64()), ("correction", pa.string()), ("sequential", pa.bool_()),
    ("experiment_start", pa.date32()), ("window_end", pa.date32()), ("mixed_variant_users", pa.int64()),
    ("registered", pa.bool_()), ("decision_reason", pa.string()), ("margin", pa.float64()),
    ("days_to_target_mde", pa.float64()),
])
CHECK_SCHEMA = pa.schema([("check_name", pa.string()), ("passed", pa.bool_()), ("severity", pa.string()),
                          ("observed_value", pa.float64()), ("threshold", pa.string()), ("details", pa.string())])


@dataclass
class ExperimentReadout:
    """One experiment as of one day: its settings, exposure counts, sufficient statistics and readout rows."""

    experiment_id: str
    config: ExperimentConfig
    control: str
    start: dt.date
    window_end: dt.date
    features: tuple[str, ...]
    units: dict[str, int]  # variant -> exposed users kept (one variant only)
    mixed_variant_users: int
    rows_without_user: int
    rows_without_variant: int
    sums: dict[str, dict[str, Any]]  # variant -> variant_stats.sql row
    stats: dict[str, dict[str, stats.Stat]]  # metric -> variant -> sufficient statistic
    rows: list[dict]  # analyze() rows + extras, as written to marts.experiment_readouts
    decision: str
    srm_p_value: float
    notes: list[str] = field(default_factory=list)

    @property
    def srm_flag(self) -> bool:
        return self.srm_p_value < stats.DEFAULT_SRM_THRESHOLD

    @property
    def variants(self) -> list[str]:
        return sorted(self.units)

    def cost_per_converted_user(self) -> dict[str, float | None]:
        """Per variant: total (uncapped, weighted) cost of its users / its converted users."""
        out = {}
        for v, s in self.sums.items():
            conv = float(s["converted_users"] or 0)
            out[v] = float(s["cost_usd"] or 0) / conv if conv > 0 else None
        return out


@dataclass
class ReadoutSummary:
    dt: str
    experiments: list[ExperimentReadout]
    skipped: dict[str, str]  # experiment_id -> why there is no readout
    rows_written: int
    report_paths: list[Path] = field(default_factory=list)

    def get(self, experiment_id: str) -> ExperimentReadout:
        return next(e for e in self.experiments if e.experiment_id == experiment_id)

    @property
    def mixed_variant_users(self) -> int:
        return sum(e.mixed_variant_users for e in self.experiments)

    @property
    def decisions(self) -> dict[str, str]:
        return {e.experiment_id: e.decision for e in self.experiments}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    warehouse.run(con, SQL + "schema.sql")


def _finite(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


# --------------------------------------------------------------------------------------------------
# Steps 1-4: configuration, exposures, per-user metrics, per-variant sums (DuckDB)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    cfg: ExperimentConfig
    start: dt.date
    window_end: dt.date
    features: tuple[str, ...]
    variants_seen: tuple[str, ...]


def plan(con: duckdb.DuckDBPyConnection, as_of: dt.date,
         registry: Mapping[str, ExperimentConfig]) -> tuple[dict[str, _Plan], dict[str, str]]:
    """Which experiments get a readout as of `as_of`, with their windows and metric scopes; and why others don't."""
    seen = {r[0]: r for r in warehouse.run(con, SQL + "discover.sql", dt=as_of).fetchall()}
    plans, skipped = {}, {}
    for eid in sorted(set(seen) | set(registry)):
        cfg = registry.get(eid) or default_config(eid)
        _, first, variants, features = seen.get(eid, (eid, None, [], []))
        start = cfg.start or first
        if start is None:
            skipped[eid] = "no exposures yet"
            continue
        if start > as_of:
            skipped[eid] = f"starts on {start}"
            continue
        window_end = min(as_of, cfg.end) if cfg.end else as_of
        scope = cfg.features or tuple(features or ())
        if cfg.scope == "user":
            scope = tuple(r[0] for r in con.execute(
                "SELECT DISTINCT feature FROM marts.joined_outcomes WHERE dt BETWEEN ? AND ? AND feature IS NOT NULL",
                [start - dt.timedelta(days=CUPED_DAYS + 1), window_end]).fetchall())
        plans[eid] = _Plan(cfg, start, window_end, scope, tuple(variants or ()))
    return plans, skipped


def _stage_config(con: duckdb.DuckDBPyConnection, plans: Mapping[str, _Plan]) -> None:
    cat = catalog()
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _xp_config (
        experiment_id VARCHAR, start_dt DATE, window_end DATE, cuped BOOLEAN, {cat.config_columns()})""")
    con.execute("CREATE OR REPLACE TEMP TABLE _xp_scope (experiment_id VARCHAR, feature VARCHAR)")
    if not plans:
        return
    caps = {m: cat.cap_measure(m) for m in cat.cappable}  # metric -> the measure its cap applies to
    by_measure = [{caps[m]: v for m, v in p.cfg.cap.items()} for p in plans.values()]
    con.executemany(f"INSERT INTO _xp_config VALUES (?, ?, ?, ?{', ?' * len(cat.capped_measures)})", [
        (eid, p.start, p.window_end, p.cfg.cuped, *(caps_.get(m) for m in cat.capped_measures))
        for (eid, p), caps_ in zip(plans.items(), by_measure)])
    scope = [(eid, f) for eid, p in plans.items() for f in p.features]
    if scope:
        con.executemany("INSERT INTO _xp_scope VALUES (?, ?)", scope)


def _winsorize(con: duckdb.DuckDBPyConnection, plans: Mapping[str, _Plan]) -> None:
    """Turn winsorization quantiles into caps (the lower of it and any absolute cap wins)."""
    cat = catalog()
    for eid, p in plans.items():
        if not p.cfg.winsorize:
            continue
        quantiles = {cat.cap_measure(m): q for m, q in p.cfg.winsorize.items()}
        qs = {f"q_{m}": quantiles.get(m, 1.0) for m in cat.capped_measures}
        caps = warehouse.run_sql(con, cat.winsorize_sql(), experiment_id=eid, **qs).fetchone()
        for m, cap in zip(cat.capped_measures, caps):
            if m in quantiles and cap is not None:
                con.execute(f"UPDATE _xp_config SET cap_{m} = least(coalesce(cap_{m}, 'inf'), ?) "
                            "WHERE experiment_id = ?", [float(cap), eid])


def sufficient_statistics(con: duckdb.DuckDBPyConnection, dt_: str | dt.date,
                          registry: Mapping[str, ExperimentConfig] | None = None,
                          ) -> tuple[dict[str, _Plan], dict[str, str], dict[str, dict], list[dict]]:
    """Steps 1-4: (plans, skipped, exclusions per experiment, variant_stats rows as dicts). Leaves temp tables."""
    as_of = _as_date(dt_)
    plans, skipped = plan(con, as_of, registry or {})
    _stage_config(con, plans)
    if not plans:
        return plans, skipped, {}, []
    first_start = min(p.start for p in plans.values())
    warehouse.run(con, SQL + "exposures.sql", dt=as_of, first_start=first_start)
    warehouse.run_sql(con, catalog().user_metrics_sql(), dt=as_of,
                      pre_from=first_start - dt.timedelta(days=CUPED_DAYS + 1))
    _winsorize(con, plans)
    rel = warehouse.run_sql(con, catalog().variant_stats_sql())
    names = [d[0] for d in rel.description]
    sums = [dict(zip(names, r)) for r in rel.fetchall()]
    rel = con.execute("SELECT * FROM _xp_exclusions")
    names = [d[0] for d in rel.description]
    exclusions = {r[0]: dict(zip(names, r)) for r in rel.fetchall()}
    return plans, skipped, exclusions, sums


def drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table in TEMP_TABLES:
        con.execute(f"DROP TABLE IF EXISTS {table}")


# --------------------------------------------------------------------------------------------------
# Step 5: statistics
# --------------------------------------------------------------------------------------------------


def variant_stats(row: Mapping[str, Any], cuped: bool) -> dict[str, stats.Stat]:
    """One variant_stats row → metric -> its sufficient statistic (experiments/metrics.yaml)."""
    cat = catalog()
    return {m: cat.statistic(m, row, cuped) for m in cat.metrics}


def analyze_experiment(p: _Plan, sums: list[dict], exclusion: Mapping[str, Any] | None) -> ExperimentReadout | str:
    """Readout of one experiment from its variant sums, or the reason there is none."""
    cfg = p.cfg
    by_variant = {s["variant"]: s for s in sums}
    if not by_variant:
        return f"no exposures between {p.start} and {p.window_end}"
    units = {v: int(s["n"]) for v, s in by_variant.items()}
    for v in cfg.weights or {}:
        units.setdefault(v, 0)
    control = control_of(cfg, list(units))
    units.setdefault(control, 0)
    if len(units) < 2:
        return f"only one variant seen ({', '.join(units)})"
    per_metric: dict[str, dict[str, stats.Stat]] = {m: {} for m in cfg.metrics}
    for v, s in by_variant.items():
        vs = variant_stats(s, cfg.cuped)
        for m in cfg.metrics:
            per_metric[m][v] = vs[m]
    policy = decision.Policy(sequential=cfg.sequential, min_days=cfg.min_days,
                                   min_units_per_arm=cfg.min_units_per_arm, planned_end=cfg.end,
                                   planned_units_per_arm=cfg.sample_size, alpha=cfg.alpha)
    progress = decision.Progress(days=(p.window_end - p.start).days + 1, window_end=p.window_end, units=units)
    readout = stats.analyze(
        cfg.id, per_metric, control, primary=cfg.primary, secondary=cfg.secondary, guardrails=cfg.guardrails,
        margins=cfg.margins, lower_is_better=catalog().lower_is_better, weights=cfg.weights, units=units, alpha=cfg.alpha,
        correction=cfg.correction, sequential=cfg.sequential, sequential_tuning_parameter=cfg.sequential_tuning,
        power=cfg.power, policy=policy, progress=progress, target_mde=cfg.target_mde)
    ex = exclusion or {}
    mixed = int(ex.get("mixed_variant_users") or 0)
    notes = []
    if control not in by_variant:
        notes.append(f"the control {md_text(control)} has no exposed users")  # notes are markdown; names are data
    if cfg.weights:
        stray = sorted(set(by_variant) - set(cfg.weights))
        if stray:
            notes.append(f"variant(s) {', '.join(map(md_text, stray))} not in the registry weights: left out of "
                         "the SRM test")
    open_rows = sum(int(s["open_rows"] or 0) for s in sums)
    post_rows = sum(int(s["post_rows"] or 0) for s in sums)
    unpriced = sum(int(s["unpriced_rows"] or 0) for s in sums)
    if open_rows:
        notes.append(f"{open_rows:,} of {post_rows:,} inferences in the readout still have an open attribution "
                     "window: conversions and revenue of the last day(s) may still rise")
    if unpriced:
        notes.append(f"{unpriced:,} inferences have no price (cost NULL): left out of cost_per_user")
    if ex.get("rows_without_variant"):
        notes.append(f"{int(ex['rows_without_variant']):,} inferences carry the experiment id but no variant: ignored")
    rows = [dict(r, cuped_theta=r["theta"], target_mde=cfg.target_mde, alpha=cfg.alpha, correction=cfg.correction,
                 sequential=cfg.sequential, experiment_start=p.start, window_end=p.window_end,
                 mixed_variant_users=mixed, registered=cfg.registered) for r in readout.records()]
    return ExperimentReadout(
        experiment_id=cfg.id, config=cfg, control=control, start=p.start, window_end=p.window_end,
        features=p.features, units=units, mixed_variant_users=mixed,
        rows_without_user=int(ex.get("rows_without_user") or 0),
        rows_without_variant=int(ex.get("rows_without_variant") or 0), sums=by_variant, stats=per_metric,
        rows=rows, decision=readout.decision, srm_p_value=float(readout.srm_p_value), notes=notes)


# --------------------------------------------------------------------------------------------------
# Step 6: write
# --------------------------------------------------------------------------------------------------


def _table_rows(as_of: dt.date, readouts: list[ExperimentReadout]) -> pa.Table:
    out = []
    for e in readouts:
        for r in e.rows:
            row = {name: r.get(name) for name in ROW_SCHEMA.names}
            row["dt"] = as_of
            for name, typ in zip(ROW_SCHEMA.names, ROW_SCHEMA.types):
                if typ == pa.float64():
                    row[name] = _finite(row[name])
            out.append(row)
    return pa.Table.from_pylist(out, schema=ROW_SCHEMA)


def check_rows(readouts: list[ExperimentReadout]) -> list[dict]:
    """quality.check_results rows: mixed-variant users (WARN) and sample ratio mismatch (ERROR) per experiment."""
    out = []
    for e in readouts:
        exposed = sum(e.units.values()) + e.mixed_variant_users
        share = e.mixed_variant_users / exposed if exposed else 0.0
        out.append(dict(
            check_name=f"{MIXED_CHECK}:{e.experiment_id}", passed=e.mixed_variant_users == 0, severity="WARN",
            observed_value=float(e.mixed_variant_users), threshold="= 0",
            details=f"{e.mixed_variant_users} of {exposed} exposed users of {e.experiment_id} were seen in more than "
                    f"one variant ({share:.2%}) and are excluded from the readout"))
        weights = e.config.weights or {v: 1.0 for v in e.units}
        total_w = sum(weights.values()) or 1.0
        expected = ", ".join(f"{v} {weights.get(v, 0) / total_w:.0%}" for v in e.variants)
        observed = ", ".join(f"{v} {e.units[v]}" for v in e.variants)
        out.append(dict(
            check_name=f"{SRM_CHECK}:{e.experiment_id}", passed=not e.srm_flag, severity="ERROR",
            observed_value=_finite(e.srm_p_value), threshold=f">= {stats.DEFAULT_SRM_THRESHOLD:g} (chi-square p)",
            details=f"users per variant {observed}; expected {expected}"))
    return out


def write(con: duckdb.DuckDBPyConnection, as_of: dt.date, readouts: list[ExperimentReadout]) -> int:
    """Replace as-of day `as_of` of marts.experiment_readouts and this asset's check rows, in one transaction."""
    rows = _table_rows(as_of, readouts)
    checks = pa.Table.from_pylist(check_rows(readouts), schema=CHECK_SCHEMA)
    con.register("_xp_rows", rows)
    con.register("_xp_checks", checks)
    try:
        with warehouse.transaction(con, writes=[(ASSET, as_of), ("quality.check_results", as_of)]):
            warehouse.run(con, SQL + "write.sql", dt=as_of, asset=ASSET)
    finally:
        con.unregister("_xp_rows")
        con.unregister("_xp_checks")
    return rows.num_rows


def trajectory(con: duckdb.DuckDBPyConnection, experiment_id: str, as_of: dt.date) -> list[tuple]:
    return warehouse.run(con, SQL + "trajectory.sql", experiment_id=experiment_id, dt=as_of).fetchall()


def build_experiment_readouts(con: duckdb.DuckDBPyConnection, dt_: str | dt.date,
                              registry: Mapping[str, ExperimentConfig] | None = None,
                              reports_dir: Path | None = None) -> ReadoutSummary:
    """Replace marts.experiment_readouts for as-of day `dt_`; write report pages under reports_dir/experiments."""
    ensure_tables(con)
    as_of = _as_date(dt_)
    try:
        plans, skipped, exclusions, sums = sufficient_statistics(con, as_of, registry)
    finally:
        drop_temp_tables(con)
    by_exp: dict[str, list[dict]] = {}
    for s in sums:
        by_exp.setdefault(s["experiment_id"], []).append(s)
    readouts = []
    for eid, p in plans.items():
        result = analyze_experiment(p, by_exp.get(eid, []), exclusions.get(eid))
        if isinstance(result, str):
            skipped[eid] = result
        else:
            readouts.append(result)
    n = write(con, as_of, readouts)
    summary = ReadoutSummary(as_of.isoformat(), readouts, skipped, n)
    if reports_dir is not None:
        from aiso_pipeline.experiments import report
        summary.report_paths = report.write_pages(con, summary, Path(reports_dir))
    return summary
